"""confluent-kafka (librdkafka) against a compacted topic with a short
max.compaction.lag.ms and the default (week-long) segment.ms and
segment.bytes: as in Kafka, the lag caps segment.ms on a compacted topic, so
the first append after the lag rolls the active segment and the cleaner
compacts the records that were in it. Without that roll those records would
wait a week. The broker runs its cleaner every 100 ms; the script polls with
a deadline."""
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, read_to_end, unique

LAG_MS = 1500
DEADLINE_SECONDS = 30

topic = unique("compacted-lag")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
configs = {"cleanup.policy": "compact", "max.compaction.lag.ms": str(LAG_MS)}
create_topics(admin, [topic], config=configs)

producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})


def send(key, value):
    producer.produce(topic, key=key.encode(), value=value.encode())
    check(producer.flush(30) == 0, "unflushed messages")


started = time.monotonic()
for update in range(3):
    send("key", f"update-{update}")
# What is tested is a time limit: the segment must be older than the lag
# before the next append, so the script waits the lag out.
time.sleep(max(0.0, LAG_MS / 1000 + 0.5 - (time.monotonic() - started)))
send("other", "rolls the segment")


expected = [(2, "key", "update-2"), (3, "other", "rolls the segment")]
deadline = time.monotonic() + DEADLINE_SECONDS
records = []
while time.monotonic() < deadline:
    records = read_to_end(topic)
    if records == expected:
        break
    time.sleep(0.2)
check(records == expected, f"not compacted within {DEADLINE_SECONDS}s of the lag: {records}")
print("ok")
