"""A consumer group's committed offsets survive the death of the node that
coordinates the group, on a three-node Conveyor cluster (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated), TOPIC and
GROUP.

Creates TOPIC with three partitions and replication factor 3 and produces
300 records (acks=all). A confluent-kafka consumer of GROUP reads about
half of them, commits what it read (synchronously), checks the committed
offsets it gets back and leaves the group; the group is listed once
across the cluster (by its coordinator) and described. Prints `committed` and waits
for `killed ADDRESS` on stdin (the test SIGKILLs the metadata leader, the
groups' coordinator; ADDRESS is a survivor's Kafka address). A consumer of
the same group through that survivor then starts exactly at the committed
offsets: it reads every record not committed before and none that was,
commits, and reads its own commit back from the new coordinator, which
now lists and describes the group. Prints
`ok`."""
import sys
import time

from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from common import Deliveries, check, replicated_topic, wait_for

BOOTSTRAP, TOPIC, GROUP = sys.argv[1], sys.argv[2], sys.argv[3]
PARTITIONS, RECORDS, FIRST_READ = 3, 300, 150
WAIT_SECONDS = 60

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
replicated_topic(admin, TOPIC, PARTITIONS, WAIT_SECONDS)

deliveries = Deliveries()
producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True})
for index in range(RECORDS):
    producer.produce(TOPIC, value=f"record-{index}".encode(), partition=index % PARTITIONS, on_delivery=deliveries.report)
check(producer.flush(60) == 0, "every record delivered")
check(not deliveries.failed and len(deliveries.acked) == RECORDS, f"every record acknowledged: {deliveries.failed[:3]}")


def consumer(bootstrap):
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": GROUP,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
        }
    )


# The first member reads about half, commits it and leaves.
first = consumer(BOOTSTRAP)
first.subscribe([TOPIC])
read_first = {}
deadline = time.monotonic() + WAIT_SECONDS
while len(read_first) < FIRST_READ and time.monotonic() < deadline:
    message = first.poll(1.0)
    if message is None or message.error() is not None:
        continue
    read_first[message.value().decode()] = (message.partition(), message.offset())
check(len(read_first) >= FIRST_READ, f"the first member read {len(read_first)} records")
# Each partition's next offset after what was read (records arrive in order).
committed = {}
for partition, offset in read_first.values():
    committed[partition] = max(committed.get(partition, 0), offset + 1)
first.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in committed.items()], asynchronous=False)
every = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
stored = {tp.partition: tp.offset for tp in first.committed(every, timeout=30) if tp.offset >= 0}
check(stored == committed, f"the coordinator holds the commit: {stored} vs {committed}")
first.close()


def listed_once(client):
    """Every node is asked for its groups: only the coordinator lists one."""
    listed = [group.group_id for group in client.list_consumer_groups().result(timeout=30).valid]
    check(listed.count(GROUP) == 1, f"the group is listed once across the cluster: {listed}")
    described = client.describe_consumer_groups([GROUP])[GROUP].result(timeout=30)
    check(described.state == ConsumerGroupState.EMPTY, f"the coordinator describes the group: {described.state}")


listed_once(admin)
# What was committed: every record below its partition's committed offset.
done = {value for value, (partition, offset) in deliveries.acked.items() if offset < committed.get(partition, 0)}
check(len(done) == len(read_first), f"the committed records are the ones read: {len(done)} vs {len(read_first)}")

print("committed", flush=True)
line = sys.stdin.readline().split()
check(len(line) == 2 and line[0] == "killed", f"the test says the coordinator is killed: {line}")
survivor = line[1]

# The next member, through a survivor, starts at the committed offsets.
second = consumer(survivor)
second.subscribe([TOPIC])
expected = set(deliveries.acked) - done
read_second = {}
first_offsets = {}
deadline = time.monotonic() + WAIT_SECONDS
while len(read_second) < len(expected) and time.monotonic() < deadline:
    message = second.poll(1.0)
    if message is None or message.error() is not None:
        continue
    first_offsets.setdefault(message.partition(), message.offset())
    read_second[message.value().decode()] = (message.partition(), message.offset())
again = sorted(set(read_second) & done)
check(not again, f"nothing committed is read again: {again[:5]} ({len(again)})")
check(set(read_second) == expected, f"every uncommitted record read: {len(read_second)} of {len(expected)}")
resumed = {p: committed.get(p, 0) for p in first_offsets}
check(first_offsets == resumed, f"each partition resumed at its committed offset: {first_offsets} vs {committed}")

# The new coordinator takes commits and answers them.
ends = {p: sum(1 for partition, _ in deliveries.acked.values() if partition == p) for p in range(PARTITIONS)}
second.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in ends.items()], asynchronous=False)
ended = {tp.partition: tp.offset for tp in second.committed(every, timeout=30)}
check(ended == ends, f"the new coordinator holds the new commit: {ended} vs {ends}")
second.close()
# The killed node leaves Metadata (else asking every node would wait on it).
survivors = AdminClient({"bootstrap.servers": survivor})
wait_for(lambda: len(survivors.list_topics(timeout=10).brokers) == 2 or None, "the killed node to leave Metadata")
listed_once(survivors)
print("ok", flush=True)
