"""confluent-kafka (librdkafka) transactions on a compacted topic: the
cleaner removes an aborted transaction's records (Kafka's cleaner rule), so
even a read_uncommitted consumer reading from the beginning stops seeing
them, while a committed transaction's records stay at their offsets and a
read_committed consumer reads through to the high watermark. The broker
runs its cleaner every 100 ms; the script polls with a deadline."""
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, EAGER_COMPACTION, check, create_topics, read_to_end, transactional_producer, unique

DEADLINE_SECONDS = 60

topic = unique("compacted-txn")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], config={**EAGER_COMPACTION, "delete.retention.ms": "0"})

transactional = transactional_producer(unique("compacted-txn-id"), {"linger.ms": 0})
transactional.begin_transaction()
for index in range(5):
    transactional.produce(topic, key=f"aborted-{index}".encode(), value=b"never committed")
check(transactional.flush(30) == 0, "unflushed messages")
transactional.abort_transaction(30)
transactional.begin_transaction()
for index in range(3):
    transactional.produce(topic, key=f"committed-{index}".encode(), value=f"value-{index}".encode())
check(transactional.flush(30) == 0, "unflushed messages")
transactional.commit_transaction(30)

# Plain records after the transactions push them out of the active segment.
plain = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
for filler in range(30):
    plain.produce(topic, key=b"filler", value=f"filler {filler}".encode() * 4)
    check(plain.flush(30) == 0, "unflushed messages")


deadline = time.monotonic() + DEADLINE_SECONDS
records = []
while time.monotonic() < deadline:
    records = read_to_end(topic, "read_uncommitted")
    if not any(key.startswith("aborted-") for _, key, _ in records):
        break
    time.sleep(0.2)
aborted = [record for record in records if record[1].startswith("aborted-")]
check(not aborted, f"the cleaner did not remove the aborted records within {DEADLINE_SECONDS}s: {aborted}")
committed = [record for record in records if record[1].startswith("committed-")]
check([(key, value) for _, key, value in committed] == [(f"committed-{index}", f"value-{index}") for index in range(3)],
      f"the committed transaction's records stay: {records}")
check(committed[0][0] >= 5, f"offsets are kept (the aborted records' offsets are a gap): {committed}")
check(records[-1][1] == "filler", f"read to the end: {records[-3:]}")
read_committed = read_to_end(topic, "read_committed")
check([record for record in read_committed if not record[1].startswith("filler")] == committed,
      f"a read_committed consumer sees the same committed records: {read_committed}")
check(read_committed[-1][0] == records[-1][0], "and reads through to the end")
print("ok")
