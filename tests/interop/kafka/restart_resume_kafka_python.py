"""kafka-python: a consumer in a group commits part way; the broker restarts
under it (the test drives the restart and writes a line to our stdin when the
broker is back); the same consumer object carries on and resumes from the
committed offsets, missing nothing."""
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("restart")
group = unique("restart-group")
KafkaAdminClient(bootstrap_servers=BOOTSTRAP).create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=False)
for i in range(100):
    producer.send(topic, partition=i % 2, value=str(i).encode())
producer.flush()
producer.close()

consumer = KafkaConsumer(topic, bootstrap_servers=BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, max_poll_records=20, session_timeout_ms=6000,
                         reconnect_backoff_max_ms=500)
seen = []
deadline = time.monotonic() + 30
while len(seen) < 40:
    check(time.monotonic() < deadline, "did not consume 40 records before the restart")
    for records in consumer.poll(timeout_ms=200, max_records=40 - len(seen)).values():
        seen.extend(records)
consumer.commit()
committed = {tp: consumer.committed(tp) for tp in (TopicPartition(topic, 0), TopicPartition(topic, 1))}
print("committed", {tp.partition: offset for tp, offset in committed.items()}, flush=True)

# The broker restarts now; wait until the test says it is back.
check(sys.stdin.readline().strip() == "restarted", "the test did not restart the broker")

after = {}
deadline = time.monotonic() + 60
while sum(len(values) for values in after.values()) < 100 - 40:
    check(time.monotonic() < deadline, f"after the restart only {sum(len(v) for v in after.values())} records came")
    for tp, records in consumer.poll(timeout_ms=200).items():
        after.setdefault(tp, []).extend(records)
for tp, records in after.items():
    check(records[0].offset == committed[tp], f"partition {tp.partition} resumed at {records[0].offset}, committed {committed[tp]}")
    check([r.offset for r in records] == list(range(committed[tp], committed[tp] + len(records))), "a gap after the restart")
values = sorted(int(r.value) for r in seen) + sorted(int(r.value) for rs in after.values() for r in rs)
check(sorted(values) == list(range(100)), f"records lost or duplicated across the restart: {len(values)} / {len(set(values))}")
consumer.close()
print("ok", flush=True)
