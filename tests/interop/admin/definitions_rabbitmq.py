"""Definitions exported from a real RabbitMQ node, imported into Conveyor.

Starts a private RabbitMQ node (Debian's rabbitmq-server) on free loopback
ports with its data in a temporary directory, declares a topology on it
with pika (topic, fanout, direct and headers exchanges, an exchange-to-
exchange binding, an alternate exchange, a dead-letter queue, a second
vhost, a user with a tag Conveyor does not know), exports it with
`rabbitmqctl export_definitions`, imports the file with `conveyor
definitions import`, then checks that Conveyor has the same queues,
exchanges and bindings and that the same AMQP publishes (pika) land in the
same queues on both. Every process it starts is stopped by its PID.

Usage: definitions_rabbitmq.py CONVEYOR_BINARY
"""
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pika

from common import HTTP, check

AMQP = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
NODE = "defs@localhost"
BOOT_SECONDS = 120
# Starts of the node with fresh ports when one was taken before it bound it.
PORT_ATTEMPTS = 3


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def rabbitmq_server():
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    fail("rabbitmq-server is missing: this test needs Debian's package "
         "(sudo apt-get install rabbitmq-server; ./scripts/test installs it when run as root)")


def ephemeral_low():
    """The lowest port the kernel hands out to outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A port below the ephemeral range that is free now. Ports from that
    range (what binding port 0 gives) are also handed to the outgoing
    connections of every other test running beside this one: while the
    admin API is being fuzzed, thousands of them, and one took the node's
    distribution port between our pick and the node's bind. Ports below the
    range are only ever taken by an explicit bind."""
    high = min(ephemeral_low(), 65536)
    for _ in range(200):
        port = random.randrange(max(1024, high - 12000), high)
        with socket.socket() as sock:
            try:
                # As RabbitMQ checks its ports: every interface.
                sock.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    fail("no free port below the ephemeral range after 200 tries")


def start_node(server, epmd, work, processes):
    """Our own epmd and a RabbitMQ node on fresh loopback ports; both are
    appended to `processes`. Returns the node's environment, its AMQP port
    and its process."""
    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    amqp_port, dist_port, epmd_port = sorted(ports)
    env = dict(
        os.environ,
        HOME=os.path.join(work, "home"),
        ERL_EPMD_PORT=str(epmd_port),
        RABBITMQ_NODENAME=NODE,
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(amqp_port),
        RABBITMQ_DIST_PORT=str(dist_port),
        RABBITMQ_MNESIA_BASE=os.path.join(work, "mnesia"),
        RABBITMQ_LOG_BASE=os.path.join(work, "log"),
        RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(work, "enabled_plugins"),
        RABBITMQ_CONF_ENV_FILE=os.path.join(work, "rabbitmq-env.conf"),
        RABBITMQ_CONFIG_FILE=os.path.join(work, "rabbitmq.conf"),
        RABBITMQ_PID_FILE=os.path.join(work, "pid"),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
    )
    # Our own epmd on a free port, in the foreground, so that it is ours to stop.
    processes.append(("epmd", subprocess.Popen([epmd, "-port", str(epmd_port), "-address", "127.0.0.1"],
                                                env=env, start_new_session=True)))
    log = open(os.path.join(work, "rabbitmq.log"), "w")
    node = subprocess.Popen([server], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    processes.append(("rabbitmq-server", node))
    return env, amqp_port, node


def wait_listening(node, amqp_port, work, last):
    """Waits (bounded) until the node accepts AMQP connections. Returns True
    when it exited because a port it was given was taken (and `last` is not
    set); fails the test on anything else."""
    deadline = time.monotonic() + BOOT_SECONDS
    while True:
        if node.poll() is not None:
            with open(os.path.join(work, "rabbitmq.log")) as output:
                text = output.read()
            if not last and ("already_used" in text or "eaddrinuse" in text):
                return True
            fail(f"rabbitmq-server exited ({node.returncode}) before listening:\n{text[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", amqp_port), timeout=1).close()
            return False
        except OSError:
            if time.monotonic() > deadline:
                fail(f"rabbitmq-server did not listen on 127.0.0.1:{amqp_port} within {BOOT_SECONDS}s")
            time.sleep(0.2)


def stop(process, name):
    """SIGTERM to the process group it leads (its PID), SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {process.pid}) ignored SIGTERM; killing it", file=sys.stderr)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def main():
    conveyor = sys.argv[1]
    server = rabbitmq_server()
    bin_dir = os.path.dirname(server)
    rabbitmqctl = os.path.join(bin_dir, "rabbitmqctl")
    epmd = shutil.which("epmd") or fail("epmd (Erlang) is missing; it comes with rabbitmq-server")
    work = tempfile.mkdtemp(prefix="conveyor-defs-rabbitmq.")
    processes = []
    try:
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(work, sub))
        with open(os.path.join(work, "enabled_plugins"), "w") as plugins:
            plugins.write("[].")
        for empty in ("rabbitmq-env.conf", "rabbitmq.conf"):
            open(os.path.join(work, empty), "w").close()
        started = time.monotonic()
        # Free ports are picked, then bound by the node: another process on
        # this machine may take one in between. Bounded retries with new ports.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            env, amqp_port, node = start_node(server, epmd, work, processes)
            taken = wait_listening(node, amqp_port, work, last=attempt == PORT_ATTEMPTS)
            if not taken:
                break
            print(f"a port was taken before rabbitmq-server bound it (attempt {attempt}); new ports", file=sys.stderr)
            while processes:
                name, process = processes.pop()
                stop(process, name)

        def ctl(*args):
            result = subprocess.run([rabbitmqctl, "-n", NODE, *args], env=env, capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                fail(f"rabbitmqctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
            return result.stdout

        ctl("await_startup", "--timeout", str(BOOT_SECONDS))
        version = ctl("version").strip()
        print(f"RabbitMQ {version} up in {time.monotonic() - started:.1f}s on 127.0.0.1:{amqp_port} (pid {node.pid})")
        ctl("add_vhost", "staging")
        ctl("set_permissions", "-p", "staging", "guest", ".*", ".*", ".*")
        ctl("add_user", "alice", "s3cret")
        ctl("set_user_tags", "alice", "monitoring", "management")
        ctl("set_permissions", "-p", "staging", "alice", "^alice\\..*", ".*", ".*")

        declare_topology(f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2f", f"amqp://guest:guest@127.0.0.1:{amqp_port}/staging")
        exported = os.path.join(work, "definitions.json")
        ctl("export_definitions", exported)
        with open(exported) as file:
            definitions = json.load(file)

        imported = subprocess.run([conveyor, "definitions", "import", exported, "--json", "--server", f"http://{HTTP}"],
                                  capture_output=True, text=True, timeout=60)
        check(imported.returncode == 0, f"conveyor definitions import failed: {imported.stdout}{imported.stderr}")
        report = json.loads(imported.stdout)
        print("imported:", json.dumps({key: report[key] for key in ("vhosts", "users", "queues", "exchanges", "bindings")}))
        check("alice" not in report["users_without_password"], f"alice keeps her RabbitMQ password: {report}")
        check(any(skipped["kind"] == "user_tag" and skipped["name"] == "management" for skipped in report["skipped"]),
              f"the management tag is reported as skipped: {report}")
        user_exchanges = [exchange for exchange in definitions["exchanges"] if not exchange["name"].startswith("amq.")]
        check(report["queues"] == len(definitions["queues"]), f"every queue imported: {report}")
        check(report["exchanges"] == len(user_exchanges), f"every exchange imported: {report}")
        check(report["bindings"] == len(definitions["bindings"]), f"every binding imported: {report}")

        compare_topology(definitions)
        check_rabbitmq_password_logs_in()
        again = subprocess.run([conveyor, "definitions", "import", exported, "--server", f"http://{HTTP}"],
                               capture_output=True, text=True, timeout=60)
        check(again.returncode == 0, f"importing again changes nothing and succeeds: {again.stdout}{again.stderr}")

        exported_again = subprocess.run([conveyor, "definitions", "export", "--server", f"http://{HTTP}"],
                                        capture_output=True, text=True, timeout=60)
        check(exported_again.returncode == 0, f"conveyor definitions export: {exported_again.stderr}")
        ours = json.loads(exported_again.stdout)
        names = lambda document, kind: {(item["vhost"], item["name"]) for item in document[kind]}  # noqa: E731
        check(names(ours, "queues") == names(definitions, "queues"), f"the export has the same queues: {ours['queues']}")
        check(names(definitions, "exchanges") - {(vhost, name) for vhost, name in names(definitions, "exchanges") if name.startswith("amq.")}
              <= names(ours, "exchanges"), f"the export has the exchanges: {ours['exchanges']}")
        check(len(ours["bindings"]) == len(definitions["bindings"]), f"the export has the bindings: {ours['bindings']}")
        hashes = lambda document: {user["name"]: (user["password_hash"], user.get("hashing_algorithm")) for user in document["users"]}  # noqa: E731
        check(hashes(ours)["alice"] == hashes(definitions)["alice"],
              f"alice's RabbitMQ hash is exported as imported: {hashes(ours)} vs {hashes(definitions)}")

        base = AMQP.split("://", 1)[1]
        rabbit = route_all(f"amqp://guest:guest@127.0.0.1:{amqp_port}", definitions)
        ours = route_all(f"amqp://guest:guest@{base}", definitions)
        check(rabbit == ours, f"the same publishes land in the same queues:\nRabbitMQ {rabbit}\nConveyor {ours}")
        delivered = sum(len(bodies) for bodies in rabbit.values())
        check(delivered >= 8, f"the publishes were routed somewhere: {rabbit}")
        print(f"{delivered} deliveries routed alike across {len(rabbit)} queues")
        check_export_imports_into_rabbitmq(conveyor, ctl, work)
    finally:
        for name, process in reversed(processes):
            stop(process, name)
        shutil.rmtree(work, ignore_errors=True)


def declare_topology(root_url, staging_url):
    connection = pika.BlockingConnection(pika.URLParameters(root_url))
    channel = connection.channel()
    channel.exchange_declare("orders", "topic", durable=True, arguments={"alternate-exchange": "unrouted"})
    channel.exchange_declare("unrouted", "fanout", durable=True)
    channel.exchange_declare("audit", "fanout", durable=True)
    channel.exchange_declare("dlx", "direct", durable=True)
    channel.exchange_declare("by-region", "headers", durable=True)
    queues = {
        "orders.eu": {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "orders.eu", "x-message-ttl": 60000,
                      "x-max-length": 1000},
        "orders.all": {"x-max-priority": 5},
        "audit.log": {},
        "dead": {},
        "unrouted.q": {},
        "region.eu": {},
    }
    for name, arguments in queues.items():
        channel.queue_declare(name, durable=True, arguments=arguments)
    channel.queue_bind("orders.eu", "orders", "order.eu.*")
    channel.queue_bind("orders.all", "orders", "order.#")
    channel.exchange_bind("audit", "orders", "#.created")
    channel.queue_bind("audit.log", "audit", "")
    channel.queue_bind("dead", "dlx", "orders.eu")
    channel.queue_bind("unrouted.q", "unrouted", "")
    channel.queue_bind("region.eu", "by-region", "", arguments={"x-match": "any", "region": "eu", "tier": "gold"})
    connection.close()
    connection = pika.BlockingConnection(pika.URLParameters(staging_url))
    channel = connection.channel()
    channel.queue_declare("jobs", durable=True, arguments={"x-queue-type": "classic"})
    channel.queue_bind("jobs", "amq.direct", "jobs")
    connection.close()


def check_export_imports_into_rabbitmq(conveyor, ctl, work):
    """The way back: Conveyor's export, an SQS queue included (its
    attributes and tags are `sqs.*` arguments), imports into RabbitMQ."""
    import boto3
    sqs = boto3.client("sqs", endpoint_url=f"http://{HTTP}", region_name="us-east-1",
                       aws_access_key_id="conveyor", aws_secret_access_key="conveyor")
    sqs.create_queue(QueueName="sqs-orders", Attributes={"VisibilityTimeout": "5"}, tags={"team": "billing"})
    exported = subprocess.run([conveyor, "definitions", "export", "--server", f"http://{HTTP}"],
                              capture_output=True, text=True, timeout=60)
    check(exported.returncode == 0, f"conveyor definitions export: {exported.stderr}")
    document = json.loads(exported.stdout)
    sqs_queue = next(queue for queue in document["queues"] if queue["name"] == "sqs-orders")
    # x-message-delays: the core holds back messages sent with DelaySeconds;
    # exported so that an import gives back a queue that does the same.
    check(sqs_queue["arguments"] == {"sqs.VisibilityTimeout": 5, "sqs.tag.team": "billing", "x-message-delays": True},
          f"the SQS queue's attributes, tags and delays are its arguments: {sqs_queue}")
    path = os.path.join(work, "conveyor-definitions.json")
    with open(path, "w") as file:
        file.write(exported.stdout)
    ctl("import_definitions", path)
    listed = ctl("list_queues", "-p", "/", "--quiet", "--no-table-headers", "name")
    check("sqs-orders" in listed.split(), f"RabbitMQ imported Conveyor's export: {listed}")
    print("Conveyor's export, SQS queue included, imports into RabbitMQ")


def check_rabbitmq_password_logs_in():
    """alice, imported with RabbitMQ's hash of her password, logs in with it
    over AMQP (PLAIN) and HTTP Basic; a wrong password is refused on both."""
    base = AMQP.split("://", 1)[1]
    connection = pika.BlockingConnection(pika.URLParameters(f"amqp://alice:s3cret@{base}/staging"))
    channel = connection.channel()
    channel.queue_declare("alice.inbox", durable=True)
    channel.queue_delete("alice.inbox")
    connection.close()
    try:
        pika.BlockingConnection(pika.URLParameters(f"amqp://alice:wrong@{base}/staging")).close()
        fail("a wrong password for alice was accepted over AMQP")
    except pika.exceptions.ProbableAuthenticationError:
        pass
    for password, expected in (("s3cret", 200), ("wrong", 401)):
        request = urllib.request.Request(f"http://{HTTP}/api/v1/overview")
        token = base64.b64encode(f"alice:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        check(status == expected, f"HTTP Basic as alice with password {password!r}: {status}, expected {expected}")
    print("alice logs in with her RabbitMQ password over AMQP and HTTP; a wrong one is refused")


def api(path):
    with urllib.request.urlopen(f"http://{HTTP}/api/v1{path}", timeout=30) as response:
        return json.load(response)


def compare_topology(definitions):
    queues = {(queue["vhost"], queue["name"]): queue for queue in api("/queues")}
    for queue in definitions["queues"]:
        check((queue["vhost"], queue["name"]) in queues, f"queue {queue['name']} in {queue['vhost']} imported")
        ours = api(f"/queues/{urllib.parse.quote(queue['name'], safe='')}?vhost={urllib.parse.quote(queue['vhost'], safe='')}")
        check(ours["durable"] == queue["durable"], f"queue {queue['name']} durable alike: {ours}")
        for key, value in queue["arguments"].items():
            check(str(ours["arguments"].get(key)) == str(value), f"queue {queue['name']} argument {key}={value}: {ours}")
    exchanges = {(exchange["vhost"], exchange["name"]): exchange for exchange in api("/exchanges")}
    for exchange in definitions["exchanges"]:
        ours = exchanges.get((exchange["vhost"], exchange["name"]))
        check(ours is not None and ours["kind"] == exchange["type"], f"exchange {exchange} imported: {ours}")
        alternate = exchange["arguments"].get("alternate-exchange")
        check(ours["alternate_exchange"] == alternate, f"exchange {exchange['name']} alternate exchange {alternate}: {ours}")
    bindings = {(binding["vhost"], binding["source"], binding["destination_type"], binding["destination"], binding["routing_key"],
                 json.dumps(binding["arguments"], sort_keys=True)) for binding in api("/bindings")}
    for binding in definitions["bindings"]:
        key = (binding["vhost"], binding["source"], binding["destination_type"], binding["destination"], binding["routing_key"],
               json.dumps(binding["arguments"], sort_keys=True))
        check(key in bindings, f"binding {binding} imported; Conveyor has {sorted(bindings)}")
    permissions = {(entry["user"], entry["vhost"]) for entry in api("/permissions")}
    check(("alice", "staging") in permissions, f"alice's permissions in staging imported: {permissions}")


PUBLISHES = [
    ("/", "orders", "order.eu.created", {}),
    ("/", "orders", "order.us.created", {}),
    ("/", "orders", "order.eu.shipped", {}),
    ("/", "orders", "invoice.paid", {}),
    ("/", "audit", "anything", {}),
    ("/", "by-region", "", {"region": "eu"}),
    ("/", "by-region", "", {"region": "us", "tier": "gold"}),
    ("/", "by-region", "", {"region": "us"}),
    ("/", "dlx", "orders.eu", {}),
    ("/", "", "dead", {}),
    ("staging", "amq.direct", "jobs", {}),
    ("staging", "amq.direct", "other", {}),
]


def route_all(base_url, definitions):
    """Publishes PUBLISHES (confirmed) and drains every defined queue: {queue: sorted bodies}."""
    for vhost in ("/", "staging"):
        connection = pika.BlockingConnection(pika.URLParameters(f"{base_url}/{'%2f' if vhost == '/' else vhost}"))
        channel = connection.channel()
        channel.confirm_delivery()
        for number, (target_vhost, exchange, key, headers) in enumerate(PUBLISHES):
            if target_vhost == vhost:
                channel.basic_publish(exchange, key, f"m{number}".encode(), pika.BasicProperties(headers=headers or None))
        connection.close()
    landed = {}
    for queue in definitions["queues"]:
        vhost = queue["vhost"]
        connection = pika.BlockingConnection(pika.URLParameters(f"{base_url}/{'%2f' if vhost == '/' else vhost}"))
        channel = connection.channel()
        bodies = []
        for _ in range(len(PUBLISHES) + 1):
            method, _, body = channel.basic_get(queue["name"], auto_ack=True)
            if method is None:
                break
            bodies.append(body.decode())
        landed[f"{vhost}:{queue['name']}"] = sorted(bodies)
        connection.close()
    return landed


if __name__ == "__main__":
    main()
