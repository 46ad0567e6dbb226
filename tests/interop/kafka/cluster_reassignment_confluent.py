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

from confluent_kafka.admin import AdminClient

from common import Deliveries, check, check_read_back, failover_producer, replicated_topic

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
PARTITIONS = 4
RECORDS = 50
WAIT_SECONDS = 90

replicated_topic(AdminClient({"bootstrap.servers": BOOTSTRAP}), TOPIC, PARTITIONS, WAIT_SECONDS)

deliveries = Deliveries()
acked, failed = deliveries.acked, deliveries.failed
producer = failover_producer(BOOTSTRAP)
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

check_read_back(BOOTSTRAP, TOPIC, PARTITIONS, acked, sent, WAIT_SECONDS)
print(f"produced {sent}", file=sys.stderr, flush=True)
print("ok", flush=True)
