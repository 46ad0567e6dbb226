"""confluent-kafka (librdkafka) members that die without leaving: a member
SIGKILLed while its group rebalances is expired after its session.timeout.ms
(not after its max.poll.interval.ms, the rebalance timeout), and after a
storm of 100 consumers joining and dying a newcomer gets every partition
within seconds.

Usage: group_expiry_confluent.py [kill|storm]; with `hold` or `swarm` the
script is one of its own child processes."""
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, unique, wait_until

SESSION_TIMEOUT_MS = 6000
# The rebalance timeout librdkafka sends: far longer than the test waits, so
# only the session timeout can free the group in time.
MAX_POLL_INTERVAL_MS = 300000
mode = sys.argv[1] if len(sys.argv) > 1 else "kill"


def member(topic, group, **extra):
    settings = {"bootstrap.servers": BOOTSTRAP, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False, "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": 500, "max.poll.interval.ms": MAX_POLL_INTERVAL_MS}
    settings.update(extra)
    consumer = Consumer(settings)
    consumer.subscribe([topic])
    return consumer



def say(line):
    print(line, flush=True)


if mode == "hold":
    # Joins alone, takes every partition, then stops polling: librdkafka
    # keeps heartbeating but cannot rejoin a rebalance until killed.
    topic, group = sys.argv[2], sys.argv[3]
    consumer = member(topic, group)
    wait_until(lambda: (consumer.poll(0.1), len(consumer.assignment()) == 4)[1], "the assignment", 60)
    say("assigned")
    time.sleep(120)
    sys.exit(1)

if mode == "swarm":
    # 25 members that join, poll for a while, and are SIGKILLed by the parent.
    topic, group = sys.argv[2], sys.argv[3]
    consumers = [member(topic, group) for _ in range(25)]
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        for consumer in consumers:
            consumer.poll(0)
        time.sleep(0.05)
    say("joined")
    time.sleep(120)
    sys.exit(1)

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
topic, group = unique(f"rdk-expiry-{mode}"), unique(f"rdk-expiry-{mode}")
create_topics(admin, [topic], partitions=4)


def group_state():
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return str(description.state).rsplit(".", 1)[-1], len(description.members)


def spawn(role):
    return subprocess.Popen([sys.executable, __file__, role, topic, group], stdout=subprocess.PIPE, text=True)


def read_line(child, seconds):
    """The child's next stdout line, waiting at most `seconds`."""
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(child.stdout, selectors.EVENT_READ)
    ready = selector.select(timeout=seconds)
    selector.close()
    check(bool(ready), f"child {child.pid} said nothing within {seconds} s")
    return child.stdout.readline().strip()


def kill(child):
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


children = []
try:
    if mode == "kill":
        held = spawn("hold")
        children.append(held)
        check(read_line(held, 60) == "assigned", "the held member did not get its assignment")
        newcomer = member(topic, group)
        # The newcomer's join starts a rebalance the held member cannot join.
        wait_until(lambda: (newcomer.poll(0.1), group_state()[0] == "PREPARING_REBALANCING")[1],
                   "the group to rebalance", 30)
        kill(held)
        killed_at = time.monotonic()
        wait_until(lambda: (newcomer.poll(0.1), len(newcomer.assignment()) == 4)[1],
                   "the newcomer to own all four partitions", 30)
        took = time.monotonic() - killed_at
        check(took >= SESSION_TIMEOUT_MS / 1000 - 1, f"the killed member was removed before its session timed out ({took:.1f} s)")
        state = group_state()
        check(state == ("STABLE", 1), f"group after the expiry: {state}")
        newcomer.close()
        say(f"ok: expired {took:.1f} s after the kill")
    else:
        for _ in range(4):
            children.append(spawn("swarm"))
        for child in children:
            check(read_line(child, 90) == "joined", f"swarm child {child.pid} did not join")
        # The storm ends: every one of the 100 members dies without leaving.
        for child in children:
            kill(child)
        newcomer = member(topic, group)
        started = time.monotonic()
        wait_until(lambda: (newcomer.poll(0.1), len(newcomer.assignment()) == 4)[1],
                   "the newcomer to own all four partitions after the storm", 40)
        took = time.monotonic() - started
        wait_until(lambda: group_state() == ("STABLE", 1), "the group to settle with one member", 20)
        newcomer.close()
        say(f"ok: the newcomer got every partition {took:.1f} s after the storm")
finally:
    for child in children:
        kill(child)
