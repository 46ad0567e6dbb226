"""Consumer groups with kafka-python: two members of one group share a
4-partition topic (each partition read by exactly one member), and because
the producer keys every event by its ride id, all events of one ride land in
one partition and are processed in order. Exits non-zero unless every event
was processed exactly once, in order per ride, by a group that used both
members."""
import json
import os
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
TOPIC = f"ride-events-{uuid.uuid4().hex[:8]}"
GROUP = f"ride-processors-{uuid.uuid4().hex[:8]}"
PARTITIONS = 4
RIDES = 8
EVENTS_PER_RIDE = 6
DEADLINE_S = 60

admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)])

# (member, partition, ride, seq) of every event processed, appended by the
# members' threads.
processed = []
lock = threading.Lock()
stop = threading.Event()
owned = {}


def member(n):
    """One member of the group, as its own service instance would run it."""
    consumer = KafkaConsumer(
        TOPIC,
        bootstrap_servers=BOOTSTRAP,
        group_id=GROUP,
        client_id=f"member-{n}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    while not stop.is_set():
        batch = consumer.poll(timeout_ms=200)
        with lock:
            owned[n] = sorted(tp.partition for tp in consumer.assignment())
            for tp, records in batch.items():
                for record in records:
                    event = json.loads(record.value)
                    processed.append((n, tp.partition, event["ride"], event["seq"]))
        if batch:
            consumer.commit()  # processed, so the group moves on
    consumer.close()


threads = [threading.Thread(target=member, args=(n,)) for n in (1, 2)]
for thread in threads:
    thread.start()

# Wait until the group has settled with both members holding partitions.
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline:
    with lock:
        settled = len(owned) == 2 and all(owned.values()) and sum(map(len, owned.values())) == PARTITIONS
    if settled:
        break
    time.sleep(0.05)
print(f"partitions per member: {owned}")

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", value_serializer=lambda v: json.dumps(v).encode())
for seq in range(EVENTS_PER_RIDE):
    for ride in range(RIDES):
        producer.send(TOPIC, key=f"ride-{ride}".encode(), value={"ride": ride, "seq": seq})
producer.flush()
producer.close()

while time.monotonic() < deadline:
    with lock:
        if len(processed) >= RIDES * EVENTS_PER_RIDE:
            break
    time.sleep(0.05)
stop.set()
for thread in threads:
    thread.join(timeout=30)
admin.delete_topics([TOPIC])
admin.close()

failures = []
if len(processed) != RIDES * EVENTS_PER_RIDE:
    failures.append(f"{len(processed)} events processed, {RIDES * EVENTS_PER_RIDE} sent")
for ride in range(RIDES):
    events = [(n, p, seq) for n, p, r, seq in processed if r == ride]
    seqs = [seq for _, _, seq in events]
    if seqs != list(range(EVENTS_PER_RIDE)):
        failures.append(f"ride-{ride} processed in order {seqs}")
    if len({p for _, p, _ in events}) > 1:
        failures.append(f"ride-{ride} spread over partitions {sorted({p for _, p, _ in events})}")
used = {n for n, _, _, _ in processed}
print(f"events processed per member: { {n: sum(1 for m, *_ in processed if m == n) for n in (1, 2)} }")
if used != {1, 2}:
    failures.append(f"only member(s) {sorted(used)} processed events")
if failures:
    sys.exit("FAILED: " + "; ".join(failures))
print(f"ok: {len(processed)} events, each processed once, in order per ride, shared by both members")
