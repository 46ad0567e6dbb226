"""kafka-python at the disk floor: once a line arrives on stdin, produces 64 KiB records to TOPIC (acks=all,
no retries) until one is not acknowledged within 3 s because the broker
holds it (the disk floor is crossed), printing "held N" (N records
acknowledged). Then it waits for a line on stdin (the test frees space),
expects the held record to be acknowledged at offset N, produces one more,
and prints "released"."""
import sys

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from common import BOOTSTRAP, check

RECORDS_MAX = 2000
VALUE = b"k" * (64 * 1024)
topic = sys.argv[1]

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", retries=0, request_timeout_ms=120_000, max_block_ms=120_000)
print("ready", flush=True)
# The test starts every producer at once.
sys.stdin.readline()
acknowledged = 0
held = None
for _ in range(RECORDS_MAX):
    future = producer.send(topic, VALUE)
    try:
        future.get(timeout=3)
        acknowledged += 1
    except KafkaTimeoutError:
        held = future
        break
check(held is not None, f"{acknowledged} records of 64 KiB were never held")
print(f"held {acknowledged}", flush=True)

sys.stdin.readline()
metadata = held.get(timeout=60)
check(metadata.offset == acknowledged, f"the held record is stored after the others: {metadata}")
after = producer.send(topic, VALUE).get(timeout=60)
check(after.offset == acknowledged + 1, f"producing goes on: {after}")
producer.close()
print("released", flush=True)
