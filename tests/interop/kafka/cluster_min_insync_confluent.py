"""min.insync.replicas on a three-node Conveyor cluster, with confluent-kafka (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and a topic
name prefix.

Creates two topics of one partition with replication factor 3:
PREFIX-all3 (min.insync.replicas=3) and PREFIX-all2 (min.insync.replicas=2),
waits until both have a leader and three in-sync replicas and prints
`leaders A B` (their leaders). Then, told by the test on stdin:

- `one-down` (a node leading neither is stopped): once Metadata shows two
  in-sync replicas, acks=all to PREFIX-all3 fails with NOT_ENOUGH_REPLICAS
  (Kafka's error 19) and acks=1 to it succeeds; acks=all to PREFIX-all2
  succeeds. Prints `one-down ok`.
- `two-down` (a second node, not PREFIX-all2's leader, is stopped): once
  Metadata shows one in-sync replica, acks=all to PREFIX-all2 fails with
  NOT_ENOUGH_REPLICAS at once. Prints `two-down ok`.
- `restarted` (both are back): once both topics have three in-sync
  replicas again, acks=all succeeds on both; each partition then holds
  exactly the records acknowledged, none of the refused ones. Prints `ok`.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import check, unique

BOOTSTRAP, PREFIX = sys.argv[1], sys.argv[2]
ALL3, ALL2 = f"{PREFIX}-all3", f"{PREFIX}-all2"
WAIT_SECONDS = 60

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})


def wait_for(condition, what, seconds=WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    check(False, f"timed out waiting for {what}")


def partition_of(topic):
    metadata = admin.list_topics(topic, timeout=10)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or 0 not in found.partitions:
        return None
    return found.partitions[0]


def in_sync(topic, count):
    """The leader once the partition has `count` in-sync replicas."""
    partition = partition_of(topic)
    if partition is None or partition.leader < 0 or len(partition.isrs) != count:
        return None
    return partition.leader


def produce(topic, value, acks):
    """The error code of one produce (0: acknowledged), no retry."""
    producer = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "acks": acks,
            "retries": 0,
            "enable.idempotence": False,
            "message.timeout.ms": 20000,
        }
    )
    outcome = []
    producer.produce(topic, value=value.encode(), partition=0, on_delivery=lambda error, _: outcome.append(error))
    producer.flush(30)
    check(len(outcome) == 1, f"one delivery report for {value}")
    return 0 if outcome[0] is None else outcome[0].code()


def produce_until_ok(topic, value, acks):
    """Acknowledged, after refusals while the leader's view settles."""
    codes = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        code = produce(topic, value, acks)
        codes.append(code)
        if code == 0:
            return
        check(code in (KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._MSG_TIMED_OUT),
              f"{value} to {topic}: {codes}")
        time.sleep(0.5)
    check(False, f"{value} to {topic} never acknowledged: {codes}")


for topic, minimum in ((ALL3, "3"), (ALL2, "2")):
    new = NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": minimum})
    for future in admin.create_topics([new]).values():
        future.result(30)
leaders = [wait_for(lambda topic=topic: in_sync(topic, 3), f"{topic} with three in-sync replicas") for topic in (ALL3, ALL2)]
print(f"leaders {leaders[0]} {leaders[1]}", flush=True)

check(sys.stdin.readline().strip() == "one-down", "the test stops a node")
wait_for(lambda: in_sync(ALL3, 2), f"{ALL3} with two in-sync replicas")
code = produce(ALL3, "refused-3", "all")
check(code == KafkaError.NOT_ENOUGH_REPLICAS, f"acks=all below min.insync.replicas 3: {code}")
check(produce(ALL3, "one-ack-3", "1") == 0, "acks=1 still goes through with two of three replicas")
produce_until_ok(ALL2, "all-2-first", "all")
print("one-down ok", flush=True)

check(sys.stdin.readline().strip() == "two-down", "the test stops a second node")
wait_for(lambda: in_sync(ALL2, 1), f"{ALL2} with one in-sync replica")
started = time.monotonic()
code = produce(ALL2, "refused-2", "all")
check(code == KafkaError.NOT_ENOUGH_REPLICAS, f"acks=all below min.insync.replicas 2: {code}")
check(time.monotonic() - started < 10, "refused at once, not after a timeout")
print("two-down ok", flush=True)

check(sys.stdin.readline().strip() == "restarted", "the test restarts both")
for topic in (ALL3, ALL2):
    wait_for(lambda topic=topic: in_sync(topic, 3), f"{topic} with three in-sync replicas again")
produce_until_ok(ALL3, "all-3-back", "all")
produce_until_ok(ALL2, "all-2-back", "all")


def values(topic, count):
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": unique("min-insync-reader"), "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = []
    deadline = time.monotonic() + WAIT_SECONDS
    while len(seen) < count and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen.append(message.value().decode())
    extra = consumer.poll(2.0)
    consumer.close()
    check(extra is None or extra.error() is not None, f"nothing more in {topic}: {extra and extra.value()}")
    return seen


check(values(ALL3, 2) == ["one-ack-3", "all-3-back"], f"{ALL3} holds what was acknowledged only")
check(values(ALL2, 2) == ["all-2-first", "all-2-back"], f"{ALL2} holds what was acknowledged only")
print("ok", flush=True)
