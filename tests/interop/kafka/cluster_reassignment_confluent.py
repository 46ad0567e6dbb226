"""confluent-kafka around a node's removal from a Conveyor cluster (issue 17):
its partition replicas move to the remaining nodes.

argv: BOOTSTRAP (every node's Kafka address, comma-separated) and TOPIC.

Creates TOPIC with PARTITIONS partitions and replication factor 3, waits
until every partition has a leader and three in-sync replicas, produces
RECORDS records to each (acks=all, idempotence) and prints `produced`. The
test then removes a node, waits until every partition's replicas have moved
off it, and kills one more node, one of the first replicas of a partition
the removed node held; it says `go` on stdin. The script produces RECORDS
more to each partition: with the moved replica caught up every partition
still has a quorum, so no record may fail. Every acknowledged record is
then read back: exactly once, at the offset it was acknowledged with, in
order. Prints `ok`."""
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import Deliveries, check, read_partitions, wait_for

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
PARTITIONS = 4
RECORDS = 50
WAIT_SECONDS = 90

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=3)]).values():
    future.result(30)


def placed():
    """The topic once each partition has a leader and three replicas in sync."""
    topic = admin.list_topics(TOPIC, timeout=10).topics.get(TOPIC)
    if topic is None or topic.error is not None or len(topic.partitions) != PARTITIONS:
        return None
    if any(partition.leader < 0 or len(partition.isrs) != 3 for partition in topic.partitions.values()):
        return None
    return topic


wait_for(placed, "a leader and three in-sync replicas for every partition", WAIT_SECONDS)

deliveries = Deliveries()
acked, failed = deliveries.acked, deliveries.failed
producer = Producer({
    "bootstrap.servers": BOOTSTRAP,
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "message.timeout.ms": 60000,
    "retry.backoff.ms": 100,
    "topic.metadata.refresh.interval.ms": 1000,
})
sent = 0


def produce_round():
    """RECORDS records to each partition, every one acknowledged."""
    global sent
    for _ in range(RECORDS):
        for partition in range(PARTITIONS):
            producer.produce(TOPIC, value=f"{sent}", partition=partition, on_delivery=deliveries.report)
            sent += 1
        producer.poll(0)
    remaining = producer.flush(WAIT_SECONDS)
    check(remaining == 0, f"{remaining} records not acknowledged in time")
    check(not failed, f"records failed: {failed[:5]}")
    check(len(acked) == sent, f"every record acknowledged: {len(acked)} of {sent}")


produce_round()
print("produced", flush=True)

# The test's waits before it answers are bounded; it kills this script otherwise.
line = sys.stdin.readline().strip()
check(line == "go", f"the test said go, not {line!r}")
produce_round()

read = read_partitions(BOOTSTRAP, TOPIC, PARTITIONS, WAIT_SECONDS)
for partition, records in read.items():
    values = [int(value) for _, value in records]
    check(values == sorted(values) and len(set(values)) == len(values), f"partition {partition}: in order, none twice")
    for offset, value in records:
        check(acked.get(value) == (partition, offset), f"{value} read at {partition}/{offset}, acknowledged at {acked.get(value)}")
total = sum(len(records) for records in read.values())
check(total == sent, f"every acknowledged record read once, nothing else: {total} of {sent}")
print(f"produced {sent}", file=sys.stderr, flush=True)
print("ok", flush=True)
