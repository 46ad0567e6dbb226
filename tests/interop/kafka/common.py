"""Shared helpers for the Kafka interop scripts: the broker address,
assertions that exit non-zero with a readable message, and reading a
partition to its end with confluent-kafka."""
import os
import sys

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique, wait_until  # noqa: E402,F401  (re-exported)


def read_to_end(topic, isolation="read_uncommitted", seconds=20):
    """Every record of partition 0 of `topic` from offset 0 to the end
    (librdkafka's partition EOF), as (offset, key, value) text."""
    import time

    from confluent_kafka import Consumer, KafkaError, TopicPartition

    reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("reader"), "enable.auto.commit": False,
                       "isolation.level": isolation, "enable.partition.eof": True, "fetch.wait.max.ms": 50})
    try:
        reader.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error():
                check(message.error().code() == KafkaError._PARTITION_EOF, f"consume error: {message.error()}")
                break
            records.append((message.offset(), message.key().decode(), message.value().decode()))
        return records
    finally:
        reader.close()
