"""confluent-kafka (librdkafka) with `compression.type` each of gzip, snappy,
lz4 and zstd against a compacted topic (cleanup.policy=compact): several
updates per key go in compressed batches of several records, then filler
pushes them out of the active segment; once the cleaner has run, a
consumer reading from the beginning sees only each key's latest value, at
its original offset. A keyless record in a compressed batch, next to a
keyed one, is refused with INVALID_RECORD and nothing of its batch is
written (the keyed neighbour never shows). The broker runs with a short `[log_cleaner]
backoff_ms`; the script polls what a from-the-beginning consumer sees,
with a deadline."""
import os
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, EAGER_COMPACTION, check, create_topics, read_to_end, unique

DEADLINE_SECONDS = 60
KEYS = [f"key-{index}" for index in range(4)]

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})


def produce_all(producer, topic, records):
    """Produces `records` (key, value) in one go, so that librdkafka packs
    them into batches of several records, and waits for every ack;
    returns each record's offset."""
    offsets = [None] * len(records)
    errors = []

    def delivered(index):
        def report(error, message):
            if error:
                errors.append(error)
            else:
                offsets[index] = message.offset()
        return report

    for index, (key, value) in enumerate(records):
        producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=delivered(index))
    check(producer.flush(30) == 0, "unflushed messages")
    check(not errors, f"delivery errors: {errors}")
    return offsets


def keyless_is_refused(producer, topic, codec):
    """Produces a keyed and a keyless record in one compressed batch (one
    flush, compressible values); both fail with INVALID_RECORD."""
    errors = {}

    def delivered(name):
        def report(error, message):
            errors[name] = error
        return report

    value = ("compressible " * 20).encode()
    producer.produce(topic, key=b"neighbour", value=value, on_delivery=delivered("keyed"))
    producer.produce(topic, key=None, value=value, on_delivery=delivered("keyless"))
    check(producer.flush(30) == 0, "unflushed messages")
    for name in ["keyless", "keyed"]:
        error = errors.get(name)
        check(error is not None and error.code() == KafkaError.INVALID_RECORD,
              f"{codec}: the {name} record of a batch with a keyless record must fail with INVALID_RECORD: {error}")


def run(codec):
    topic = unique(f"compacted-{codec}")
    create_topics(admin, [topic], config=EAGER_COMPACTION)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "linger.ms": 20})
    latest = {}
    for update in range(3):
        records = [(key, f"{key}={codec}.{update}") for key in KEYS]
        for (key, value), offset in zip(records, produce_all(producer, topic, records)):
            latest[key] = (offset, value)
    keyless_is_refused(producer, topic, codec)
    # Incompressible filler, one batch each, seals the segments above.
    for _ in range(30):
        produce_all(producer, topic, [("filler", os.urandom(64).hex())])
    expected = {key: [entry] for key, entry in latest.items()}
    deadline = time.monotonic() + DEADLINE_SECONDS
    seen = None
    while time.monotonic() < deadline:
        records = read_to_end(topic)
        seen = {}
        for offset, key, value in records:
            if key != "filler":
                seen.setdefault(key, []).append((offset, value))
        if seen == expected:
            offsets = [record[0] for record in records]
            check(offsets == sorted(set(offsets)), f"{codec}: offsets only grow")
            return
        time.sleep(0.2)
    check(False, f"{codec}: not compacted within {DEADLINE_SECONDS}s: expected {expected}, saw {seen}")


for codec in ["gzip", "snappy", "lz4", "zstd"]:
    run(codec)
print("ok")
