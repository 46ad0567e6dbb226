"""confluent-kafka producing while a Conveyor cluster changes its members (issue 17).

argv: BOOTSTRAP (the first three nodes' Kafka addresses, comma-separated)
and TOPIC.

Creates TOPIC with one partition and replication factor 3, waits until it
has a leader and three in-sync replicas, prints `leader N` (its leader,
which the test keeps) and then produces without pause (acks=all,
idempotence) while the test adds a fourth node and removes one of the
first three, until `done` on stdin. No record may fail, and no pause
between two acknowledgements may reach PAUSE_SECONDS_MAX (no downtime).
Every acknowledged record is then read back: exactly once, at the offset
it was acknowledged with, in order. Prints `ok`."""
import sys
import threading
import time

from confluent_kafka.admin import AdminClient

from common import Deliveries, check, check_read_back, failover_producer, replicated_topic

BOOTSTRAP, TOPIC = sys.argv[1], sys.argv[2]
PARTITIONS = 1
PAUSE_SECONDS_MAX = 5
PRODUCING_SECONDS_MAX = 240
WAIT_SECONDS = 60

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
leader = replicated_topic(admin, TOPIC, PARTITIONS, WAIT_SECONDS).partitions[0].leader

deliveries = Deliveries()
acked, acked_at, failed, delivered = deliveries.acked, deliveries.acked_at, deliveries.failed, deliveries.report


producer = failover_producer(BOOTSTRAP)

done = threading.Event()


def wait_for_done():
    if sys.stdin.readline().strip() == "done":
        done.set()


threading.Thread(target=wait_for_done, daemon=True).start()
print(f"leader {leader}", flush=True)

started = time.monotonic()
sent = 0
while not done.is_set() and time.monotonic() - started < PRODUCING_SECONDS_MAX:
    producer.produce(TOPIC, value=f"{sent}", partition=sent % PARTITIONS, on_delivery=delivered)
    sent += 1
    producer.poll(0.02)
check(done.is_set(), f"the test said done within {PRODUCING_SECONDS_MAX} s")
remaining = producer.flush(90)
check(remaining == 0, f"{remaining} records not acknowledged in time")
check(not failed, f"records failed: {failed[:5]}")
check(len(acked) == sent, f"every record acknowledged: {len(acked)} of {sent}")
pauses = [later - earlier for earlier, later in zip(acked_at, acked_at[1:])]
longest = max(pauses, default=0)
check(longest < PAUSE_SECONDS_MAX, f"no downtime: the longest pause between acknowledgements was {longest:.1f} s")

check_read_back(BOOTSTRAP, TOPIC, PARTITIONS, acked, sent, WAIT_SECONDS)
print(f"produced {sent}", file=sys.stderr, flush=True)
print("ok", flush=True)
