"""Conditional append with librdkafka (confluent-kafka): the record headers
conveyor.expected-offset and conveyor.expected-key-offset. Modes:

  basic TOPIC     success and mismatch of both headers on an idempotent
                  producer; a mismatch is INVALID_RECORD naming the expected
                  and actual offsets, writes nothing, and leaves the producer
                  usable.
  race TOPIC      two writers race on one aggregate key: exactly one wins,
                  the loser re-reads the partition and retries.
  check TOPIC     after a restart of the broker: the key index still knows
                  every key's latest offset (a stale expectation is refused,
                  the current one accepted)."""
import sys
import threading

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka import errors as KafkaErrors

from common import BOOTSTRAP, check, unique

mode, topic = sys.argv[1], sys.argv[2]
AGGREGATE = b"account-7"


def producer():
    return Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "acks": "all", "linger.ms": 0})


def append(writer, key, value, **expected):
    """Produces one record with the given expectations; (offset, None) or (None, KafkaError)."""
    headers = []
    if "offset" in expected:
        headers.append(("conveyor.expected-offset", str(expected["offset"]).encode()))
    if "key_offset" in expected:
        headers.append(("conveyor.expected-key-offset", str(expected["key_offset"]).encode()))
    outcome = {}

    def delivered(err, msg):
        outcome["result"] = (None, err) if err else (msg.offset(), None)

    writer.produce(topic, key=key, value=value, headers=headers, partition=0, on_delivery=delivered)
    check(writer.flush(30) == 0, "delivery did not finish within 30 s")
    return outcome["result"]


def read_partition():
    """Every (offset, key, value) of partition 0, as a writer re-reads its aggregate."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("reader"), "enable.auto.commit": False})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.assign([TopicPartition(topic, 0, low)])
    records = []
    for _ in range(high - low + 100):
        if len(records) >= high - low:
            break
        message = consumer.poll(5)
        if message is None:
            break
        check(message.error() is None, f"consumer error {message.error()}")
        records.append((message.offset(), message.key(), message.value()))
    consumer.close()
    check(len(records) == high - low, f"read {len(records)} of {high - low} records")
    return records


def latest_of(key):
    offsets = [offset for offset, record_key, _ in read_partition() if record_key == key]
    return offsets[-1] if offsets else -1


def refused(error, expected, actual):
    """librdkafka keeps the broker's message per record (rd_kafka_message_produce_errstr),
    but confluent-kafka's Python binding shows only the code's text: the message is
    checked with kafka-python below."""
    check(error is not None, f"expected a refusal (expected {expected}, actual {actual}), got success")
    check(error.code() == KafkaError.INVALID_RECORD, f"expected INVALID_RECORD, got {error.code()} {error}")
    check(not error.retriable(), f"INVALID_RECORD must not be retriable: {error}")


def kafka_python_refusal(key, expected_key_offset):
    """kafka-python (Produce v8+) reports the broker's per-record error message."""
    writer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", retries=0)
    future = writer.send(topic, key=key, value=b"x", partition=0, headers=[("conveyor.expected-key-offset", str(expected_key_offset).encode())])
    try:
        future.get(timeout=30)
    except KafkaErrors.InvalidRecordError as error:
        return str(error)
    finally:
        writer.close()
    check(False, "kafka-python's conditional append was accepted")


if mode == "basic":
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(15)
    writer = producer()
    offset, error = append(writer, b"order-1", b"created", key_offset=-1)
    check(error is None and offset == 0, f"a new key at -1: {offset} {error}")
    offset, error = append(writer, b"order-1", b"created again", key_offset=-1)
    refused(error, -1, 0)
    offset, error = append(writer, b"order-1", b"paid", key_offset=0, offset=1)
    check(error is None and offset == 1, f"order-1 at 0, next offset 1: {offset} {error}")
    offset, error = append(writer, b"order-2", b"created", offset=5)
    refused(error, 5, 2)
    offset, error = append(writer, b"order-1", b"shipped", key_offset=0)
    refused(error, 0, 1)
    text = kafka_python_refusal(b"order-1", 0)
    check("expected" in text and "offset 0" in text and "offset 1" in text, f"kafka-python's message {text!r} names neither 0 nor 1")
    # The refused batches did not break the idempotent producer's sequence.
    offset, error = append(writer, b"order-2", b"created", offset=2, key_offset=-1)
    check(error is None and offset == 2, f"after refusals: {offset} {error}")
    records = read_partition()
    check([(o, v) for o, _, v in records] == [(0, b"created"), (1, b"paid"), (2, b"created")], f"refused records were written: {records}")
elif mode == "race":
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
        future.result(15)
    first, error = append(producer(), AGGREGATE, b"opened", key_offset=-1)
    check(error is None, f"opening the aggregate: {error}")
    writers = {name: producer() for name in ("alice", "bob")}
    barrier = threading.Barrier(2, timeout=30)
    outcomes = {}

    def write(name):
        # Both read the aggregate before either writes: the same version.
        expected = latest_of(AGGREGATE)
        barrier.wait()
        outcomes[name] = [append(writers[name], AGGREGATE, f"deposit by {name}".encode(), key_offset=expected)]
        attempts = 0
        while outcomes[name][-1][1] is not None and attempts < 5:
            attempts += 1
            refused(outcomes[name][-1][1], expected, latest_of(AGGREGATE))
            expected = latest_of(AGGREGATE)
            outcomes[name].append(append(writers[name], AGGREGATE, f"deposit by {name}".encode(), key_offset=expected))

    threads = [threading.Thread(target=write, args=(name,)) for name in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    first_tries = [outcomes[name][0][1] is None for name in writers]
    check(sorted(first_tries) == [False, True], f"exactly one writer must win the race: {outcomes}")
    check(all(outcomes[name][-1][1] is None for name in writers), f"the loser's retry must succeed: {outcomes}")
    values = [value for _, key, value in read_partition() if key == AGGREGATE]
    check(len(values) == 3 and sorted(values[1:]) == [b"deposit by alice", b"deposit by bob"], f"aggregate history {values}")
elif mode == "check":
    latest = latest_of(AGGREGATE)
    check(latest >= 1, f"the aggregate's history is gone: {latest}")
    writer = producer()
    offset, error = append(writer, AGGREGATE, b"stale", key_offset=latest - 1)
    refused(error, latest - 1, latest)
    offset, error = append(writer, AGGREGATE, b"new key?", key_offset=-1)
    refused(error, -1, latest)
    offset, error = append(writer, AGGREGATE, b"withdrawal", key_offset=latest)
    check(error is None and offset > latest, f"the current version must be accepted: {offset} {error}")
else:
    check(False, f"unknown mode {mode}")
print("ok")
