"""confluent-kafka (librdkafka) against a compacted topic
(cleanup.policy=compact): updates and a tombstone per key, then, once the
cleaner has run, a consumer reading from the beginning sees only each
key's latest value at its original offset and no deleted key; a record
without a key is refused with INVALID_RECORD; DescribeConfigs shows the
compaction configs. With an argument it runs half of a restart test:
`produce <topic>` writes, waits for compaction and prints the table;
`verify <topic>` (after a broker restart) checks the same table is still
served, then writes updates again and waits for them to be compacted too.
The broker runs with a short `[log_cleaner] backoff_ms`; the script polls
what a from-the-beginning consumer sees, with a deadline."""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from common import BOOTSTRAP, EAGER_COMPACTION, check, create_topics, unique

DEADLINE_SECONDS = 60
KEYS = [f"key-{index}" for index in range(4)]
DELETED = "key-deleted"

admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})


def create(topic):
    create_topics(admin, [topic], config={**EAGER_COMPACTION, "delete.retention.ms": "0"})


def send(topic, key, value):
    """Produces one record and waits for its ack; returns its offset."""
    outcome = {}

    def delivered(error, message):
        outcome["error"] = error
        outcome["offset"] = None if error else message.offset()

    producer.produce(topic, key=key, value=value, on_delivery=delivered)
    check(producer.flush(30) == 0, "unflushed messages")
    return outcome


def write_updates(topic, round_label):
    """Three updates per key and a value then a tombstone for DELETED;
    then filler records that push them out of the active segment.
    Returns each key's latest (offset, value)."""
    latest = {}
    for update in range(3):
        for key in KEYS:
            value = f"{key}={round_label}.{update}"
            outcome = send(topic, key.encode(), value.encode())
            check(outcome["error"] is None, f"produce failed: {outcome}")
            latest[key] = (outcome["offset"], value)
    check(send(topic, DELETED.encode(), b"soon gone")["error"] is None, "produce")
    check(send(topic, DELETED.encode(), None)["error"] is None, "tombstone")
    latest.pop(DELETED, None)
    for filler in range(30):
        outcome = send(topic, b"filler", f"filler {round_label}.{filler}".encode() * 4)
        check(outcome["error"] is None, f"produce failed: {outcome}")
    return latest


def read_all(topic):
    """Every record from the start up to the high watermark: (offset, key, value)."""
    reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("compaction-reader"),
                       "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    try:
        _, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        reader.assign([TopicPartition(topic, 0, 0)])
        records = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (not records or records[-1][0] < high - 1):
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error():
                check(message.error().code() == KafkaError._PARTITION_EOF, f"consume error: {message.error()}")
                continue
            key = message.key().decode() if message.key() is not None else None
            value = message.value().decode() if message.value() is not None else None
            records.append((message.offset(), key, value))
        check(records and records[-1][0] == high - 1, f"did not read up to the high watermark {high}: {records[-3:]}")
        return records
    finally:
        reader.close()


def table_of(records):
    """The test keys' records, ignoring filler: key -> [(offset, value)]."""
    table = {}
    for offset, key, value in records:
        if key != "filler":
            table.setdefault(key, []).append((offset, value))
    return table


def wait_compacted(topic, latest):
    """Polls until a from-the-beginning read shows only the latest value of
    each key and no deleted key; fails after the deadline."""
    expected = {key: [list(entry)] for key, entry in latest.items()}
    deadline = time.monotonic() + DEADLINE_SECONDS
    seen = None
    while time.monotonic() < deadline:
        records = read_all(topic)
        seen = {key: [list(entry) for entry in entries] for key, entries in table_of(records).items()}
        fillers = [record for record in records if record[1] == "filler"]
        if seen == expected and len(fillers) < 30:
            offsets = [record[0] for record in records]
            check(offsets == sorted(set(offsets)), "offsets only grow")
            return records
        time.sleep(0.2)
    check(False, f"not compacted within {DEADLINE_SECONDS}s: expected {expected}, saw {seen}")


def keyless_is_refused(topic):
    outcome = send(topic, None, b"no key")
    error = outcome["error"]
    check(error is not None and error.code() == KafkaError.INVALID_RECORD,
          f"a keyless record on a compacted topic must fail with INVALID_RECORD: {outcome}")


def describe_shows_compaction(topic):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    check(configs["cleanup.policy"].value == "compact", f"cleanup.policy: {configs['cleanup.policy'].value}")
    check(configs["delete.retention.ms"].value == "0", "delete.retention.ms")
    check(configs["min.compaction.lag.ms"].value == "0", "min.compaction.lag.ms default")
    check(configs["max.compaction.lag.ms"].value == "9223372036854775807", "max.compaction.lag.ms default")
    check(float(configs["min.cleanable.dirty.ratio"].value) == 0.01, "min.cleanable.dirty.ratio")


mode = sys.argv[1] if len(sys.argv) > 1 else "full"
if mode == "full":
    topic = unique("compacted")
    create(topic)
    describe_shows_compaction(topic)
    keyless_is_refused(topic)
    latest = write_updates(topic, "a")
    wait_compacted(topic, latest)
    # A second round of updates is compacted over the first.
    latest = write_updates(topic, "b")
    wait_compacted(topic, latest)
    keyless_is_refused(topic)
elif mode == "produce":
    topic = sys.argv[2]
    create(topic)
    latest = write_updates(topic, "a")
    wait_compacted(topic, latest)
    print(json.dumps(latest))
elif mode == "verify":
    topic, latest = sys.argv[2], json.loads(sys.argv[3])
    latest = {key: tuple(entry) for key, entry in latest.items()}
    wait_compacted(topic, latest)
    latest = write_updates(topic, "b")
    wait_compacted(topic, latest)
print("ok")
