# Sourced by every example's run.sh: where the broker is, and which Python
# and Node.js have the client libraries the examples use.
#
#   CONVEYOR_KAFKA  host:port of the Kafka door    (default 127.0.0.1:9092)
#   CONVEYOR_AMQP   amqp:// URL of the AMQP door   (default amqp://127.0.0.1:5672)
#   CONVEYOR_HTTP   host:port of SQS/SNS/admin API (default 127.0.0.1:8080)
#
# The client libraries are the ones ./scripts/test installs (pinned in
# tests/interop/requirements.txt and tests/interop/js/package.json); set
# CONVEYOR_PYTHON or CONVEYOR_NODE_MODULES to use others.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CONVEYOR_KAFKA="${CONVEYOR_KAFKA:-127.0.0.1:9092}"
export CONVEYOR_AMQP="${CONVEYOR_AMQP:-amqp://127.0.0.1:5672}"
export CONVEYOR_HTTP="${CONVEYOR_HTTP:-127.0.0.1:8080}"
export PYTHONUNBUFFERED=1
export KAFKAJS_NO_PARTITIONER_WARNING=1

missing_clients() {
  echo "$1 not found. Install the client libraries once with ./scripts/test, or:" >&2
  echo "  python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt" >&2
  echo "  (cd tests/interop/js && npm ci)" >&2
  exit 2
}

# run_python FILE ARGS...: runs an example program with the pinned Python clients.
run_python() {
  local python="${CONVEYOR_PYTHON:-${CONVEYOR_TEST_PYTHON:-$repo/.venv/bin/python}}"
  [ -x "$python" ] || missing_clients "$python"
  "$python" "$@"
}

# run_node FILE ARGS...: runs an example program with the pinned Node.js clients.
run_node() {
  local modules="${CONVEYOR_NODE_MODULES:-${CONVEYOR_TEST_NODE_MODULES:-$repo/tests/interop/js/node_modules}}"
  [ -d "$modules" ] || missing_clients "$modules"
  NODE_PATH="$modules" node "$@"
}
