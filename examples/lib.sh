# Sourced by every example's run.sh: where the broker is, and which Python
# and Node.js have the client libraries the examples use.
#
#   CONVEYOR_KAFKA  host:port of the Kafka door    (default 127.0.0.1:9092)
#   CONVEYOR_AMQP   amqp:// URL of the AMQP door   (default amqp://127.0.0.1:5672)
#   CONVEYOR_HTTP   host:port of SQS/SNS/admin API (default 127.0.0.1:8080)
#
# Which Python and Node.js: CONVEYOR_TEST_PYTHON / CONVEYOR_TEST_NODE_MODULES
# when set (./scripts/test sets them); else the repo's .venv and
# tests/interop/js/node_modules that ./scripts/test installs (pinned in
# tests/interop/requirements.txt and tests/interop/js/package.json), if
# present; else python3 and node as found on the PATH, with whatever client
# libraries they have.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONVEYOR_KAFKA="${CONVEYOR_KAFKA:-127.0.0.1:9092}"
export CONVEYOR_AMQP="${CONVEYOR_AMQP:-amqp://127.0.0.1:5672}"
export CONVEYOR_HTTP="${CONVEYOR_HTTP:-127.0.0.1:8080}"
export PYTHONUNBUFFERED=1
export KAFKAJS_NO_PARTITIONER_WARNING=1

missing_clients() {
  echo "$1 is missing. Install the pinned client libraries once with ./scripts/test, or:" >&2
  echo "  python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt" >&2
  echo "  (cd tests/interop/js && npm ci)" >&2
  exit 2
}

# run_python FILE ARGS...: runs an example program with the Python clients.
run_python() {
  local python="${CONVEYOR_TEST_PYTHON:-}"
  if [ -z "$python" ]; then
    if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
  fi
  command -v "$python" >/dev/null || missing_clients "$python"
  "$python" -c 'import kafka, pika, boto3' 2>/dev/null || missing_clients "kafka-python, pika or boto3 (for $python)"
  "$python" "$@"
}

# run_node FILE ARGS...: runs an example program with the Node.js clients.
run_node() {
  local modules="${CONVEYOR_TEST_NODE_MODULES:-$repo/tests/interop/js/node_modules}"
  command -v node >/dev/null || missing_clients node
  if [ -d "$modules" ]; then export NODE_PATH="$modules${NODE_PATH:+:$NODE_PATH}"; fi
  node -e 'for (const m of ["amqplib", "kafkajs", "@aws-sdk/client-sqs", "@aws-sdk/client-sns"]) require.resolve(m)' 2>/dev/null ||
    missing_clients "amqplib, kafkajs or the AWS SDK (for node, NODE_PATH=${NODE_PATH:-})"
  node "$@"
}
