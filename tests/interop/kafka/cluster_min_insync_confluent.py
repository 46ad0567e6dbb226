"""min.insync.replicas on a three-node Conveyor cluster, with confluent-kafka (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and a topic
name prefix.

Creates two topics of one partition with replication factor 3:
PREFIX-all3 (min.insync.replicas=3) and PREFIX-all2 (min.insync.replicas=2),
waits until both have a leader and three in-sync replicas and prints
`leaders A B` (their leaders). Then, told by the test on stdin:

- `one-down` (a node leading neither is stopped): acks=all to PREFIX-all3
  is acknowledged until its leader sees the replica silent, then fails with
  NOT_ENOUGH_REPLICAS (Kafka's error 19); acks=1 to it succeeds; acks=all
  to PREFIX-all2 succeeds. Prints `one-down ok`.
- `two-down` (a second node, not PREFIX-all2's leader, is stopped): once
  Metadata shows one in-sync replica, acks=all to PREFIX-all2 fails with
  NOT_ENOUGH_REPLICAS at once (not after a timeout). Prints `two-down ok`.
- `restarted` (both are back): once both topics have three in-sync
  replicas again, acks=all succeeds on both. Each partition then holds
  every acknowledged record in order and none of the refused ones (a
  produce that timed out may be either). Prints `ok`.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import check, unique, wait_for

BOOTSTRAP, PREFIX = sys.argv[1], sys.argv[2]
ALL3, ALL2 = f"{PREFIX}-all3", f"{PREFIX}-all2"
WAIT_SECONDS = 60

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})


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


# What each topic was sent, by outcome: acknowledged (must be there, in
# order), refused (must not be there), timed out (may be either).
acked = {ALL3: [], ALL2: []}
refused = {ALL3: [], ALL2: []}
unknown = {ALL3: [], ALL2: []}


def send(topic, value, acks):
    code = produce(topic, value, acks)
    {0: acked, KafkaError.NOT_ENOUGH_REPLICAS: refused}.get(code, unknown)[topic].append(value)
    check(code in (0, KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError._MSG_TIMED_OUT),
          f"{value} to {topic}: error {code}")
    return code


def send_until(topic, prefix, acks, wanted):
    """Sends prefix-0, prefix-1, ... until one is answered `wanted`."""
    deadline = time.monotonic() + WAIT_SECONDS
    index = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        code = send(topic, f"{prefix}-{index}", acks)
        if code == wanted:
            return time.monotonic() - started
        index += 1
        time.sleep(0.2)
    check(False, f"{prefix} to {topic} never answered {wanted}: {acked[topic]} {refused[topic]} {unknown[topic]}")


for topic, minimum in ((ALL3, "3"), (ALL2, "2")):
    new = NewTopic(topic, num_partitions=1, replication_factor=3, config={"min.insync.replicas": minimum})
    for future in admin.create_topics([new]).values():
        future.result(30)
leaders = [wait_for(lambda topic=topic: in_sync(topic, 3), f"{topic} with three in-sync replicas") for topic in (ALL3, ALL2)]
print(f"leaders {leaders[0]} {leaders[1]}", flush=True)

check(sys.stdin.readline().strip() == "one-down", "the test stops a node")
# Acknowledged until the leader sees a replica silent, then refused.
send_until(ALL3, "all-3", "all", KafkaError.NOT_ENOUGH_REPLICAS)
check(send(ALL3, "one-ack-3", "1") == 0, "acks=1 still goes through with two of three replicas")
send_until(ALL2, "all-2", "all", 0)
print("one-down ok", flush=True)

check(sys.stdin.readline().strip() == "two-down", "the test stops a second node")
# Only the leader answers Metadata now: its own view of the ISR.
wait_for(lambda: in_sync(ALL2, 1), f"{ALL2} with one in-sync replica")
seconds = send_until(ALL2, "lone-2", "all", KafkaError.NOT_ENOUGH_REPLICAS)
check(seconds < 10, f"refused at once, not after a timeout: {seconds:.1f} s")
print("two-down ok", flush=True)

check(sys.stdin.readline().strip() == "restarted", "the test restarts both")
for topic in (ALL3, ALL2):
    wait_for(lambda topic=topic: in_sync(topic, 3), f"{topic} with three in-sync replicas again")
send_until(ALL3, "back-3", "all", 0)
send_until(ALL2, "back-2", "all", 0)


def values(topic):
    """Every value of partition 0, to its end."""
    consumer = Consumer(
        {"bootstrap.servers": BOOTSTRAP, "group.id": unique("min-insync-reader"), "enable.auto.commit": False,
         "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == KafkaError._PARTITION_EOF:
                break
            continue
        seen.append(message.value().decode())
    consumer.close()
    return seen


for topic in (ALL3, ALL2):
    stored = values(topic)
    check(refused[topic], f"something was refused on {topic}")
    check(not set(refused[topic]) & set(stored), f"nothing refused is stored in {topic}: {refused[topic]} vs {stored}")
    certain = [value for value in stored if value not in unknown[topic]]
    check(certain == acked[topic], f"{topic} holds what was acknowledged, in order: {certain} vs {acked[topic]}")
print("ok", flush=True)
