"""confluent-kafka against a three-node Conveyor cluster (issue 17).

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and TOPIC.

Creates TOPIC with 3 partitions and replication factor 3 (a factor of 4 is
refused with INVALID_REPLICATION_FACTOR), waits until Metadata lists the
three brokers and, for every partition, a leader, three replicas and three
in-sync replicas; produces the first half of the records with acks=all and
idempotence, prints `leader N` (the leader of partition 0) and waits for
`killed` on stdin (the test SIGKILLs that node). The same producer then
sends the second half, which reaches the new leaders after the client
refreshes its metadata. Every acknowledged record is then read back from
the survivors: exactly once, at the offset it was acknowledged with, in
order per partition, nothing else. Prints `ok`, and on stderr one `end P N`
line per partition (its end offset)."""
import sys

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import Deliveries, check, read_partitions, unique, wait_for

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
PARTITIONS = 3
RECORDS = 600  # in all, half before the kill and half after
WAIT_SECONDS = 60


admin = AdminClient({"bootstrap.servers": BOOTSTRAP})

too_wide = admin.create_topics([NewTopic(unique("too-wide"), num_partitions=1, replication_factor=4)])
for future in too_wide.values():
    try:
        future.result(30)
        check(False, "a replication factor of 4 on three nodes was accepted")
    except KafkaException as error:
        check(error.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, f"RF 4 refused with {error}")

for future in admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)]).values():
    future.result(30)


def placed():
    """Every partition with a leader and all three replicas in sync."""
    metadata = admin.list_topics(TOPIC, timeout=10)
    topic = metadata.topics.get(TOPIC)
    if len(metadata.brokers) != 3 or topic is None or topic.error is not None or len(topic.partitions) != PARTITIONS:
        return None
    for partition in topic.partitions.values():
        if partition.leader < 0 or sorted(partition.replicas) != [1, 2, 3] or sorted(partition.isrs) != [1, 2, 3]:
            return None
    return metadata


metadata = wait_for(placed, "every partition led and replicated on three nodes")
check(sorted(metadata.brokers) == [1, 2, 3], f"three brokers: {metadata.brokers}")
leader = metadata.topics[TOPIC].partitions[0].leader

deliveries = Deliveries()
acked, failed, delivered = deliveries.acked, deliveries.failed, deliveries.report


producer = Producer({
    "bootstrap.servers": BOOTSTRAP,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "message.timeout.ms": 120000,
    "retry.backoff.ms": 100,
    "topic.metadata.refresh.interval.ms": 1000,
})


def produce(first, last):
    for index in range(first, last):
        producer.produce(TOPIC, key=f"k{index}", value=f"{index}", partition=index % PARTITIONS, on_delivery=delivered)
        producer.poll(0)
    remaining = producer.flush(150)
    check(remaining == 0, f"{remaining} records not acknowledged in time")
    check(not failed, f"records failed: {failed[:5]}")


produce(0, RECORDS // 2)
check(len(acked) == RECORDS // 2, f"first half acknowledged: {len(acked)}")
print(f"leader {leader}", flush=True)
check(sys.stdin.readline().strip() == "killed", "the test says the leader was killed")

produce(RECORDS // 2, RECORDS)
check(len(acked) == RECORDS, f"every record acknowledged: {len(acked)} of {RECORDS}")

# Read every partition to its end from the survivors.
read = read_partitions(BOOTSTRAP, TOPIC, PARTITIONS, WAIT_SECONDS)

for partition, records in read.items():
    offsets = [offset for offset, _ in records]
    check(offsets == list(range(len(records))), f"partition {partition}: offsets gap-free from 0: {offsets[:10]}...")
    values = [int(value) for _, value in records]
    check(values == sorted(values), f"partition {partition}: records in the order they were produced")
    check(len(set(values)) == len(values), f"partition {partition}: no record twice")
    for offset, value in records:
        check(acked.get(value) == (partition, offset), f"record {value} read at {partition}/{offset}, acknowledged at {acked.get(value)}")
total = sum(len(records) for records in read.values())
check(total == RECORDS, f"every acknowledged record read once, nothing else: {total} of {RECORDS}")
for partition, records in sorted(read.items()):
    print(f"end {partition} {len(records)}", file=sys.stderr, flush=True)
print("ok", flush=True)
