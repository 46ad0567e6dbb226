"""Shared helpers for the Kafka interop scripts: the broker address,
assertions that exit non-zero with a readable message, and, with
confluent-kafka, creating topics, starting a transactional producer,
running one transaction and reading a partition to its end."""
import os
import sys

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique, wait_for, wait_until  # noqa: E402,F401  (re-exported)


# Topic configs that make a compacted topic's records cleanable almost at
# once: tiny segments, and any dirty ratio is enough for the cleaner.
EAGER_COMPACTION = {"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01"}


def create_topics(admin, names, partitions=1, config=None):
    """Creates each of `names` with confluent-kafka's AdminClient `admin`
    (one replica) and waits until every one exists."""
    from confluent_kafka.admin import NewTopic

    topics = [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {}) for name in names]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)


def assigned_partitions(consumer):
    """The partition numbers a confluent-kafka consumer holds, sorted."""
    return sorted(tp.partition for tp in consumer.assignment())


def consume_committing(consumers, values, count):
    """A step for `wait_until`: polls each confluent-kafka consumer once,
    appends each record's value as an int to `values` and commits it
    synchronously; true once `values` holds `count`. A failed commit (the
    coordinator may be moving or restarting) is reported on stderr: the
    consumer's position still moves on."""
    from confluent_kafka import KafkaException

    def step():
        for consumer in consumers:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                values.append(int(message.value()))
                try:
                    consumer.commit(message=message, asynchronous=False)
                except KafkaException as error:
                    print(f"commit failed: {error}", file=sys.stderr)
        return len(values) >= count
    return step


def produce_numbers(topic, values):
    """Produces each of `values` as a record whose key and value are its
    decimal text, with a fresh confluent-kafka producer, and flushes."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    for value in values:
        producer.produce(topic, key=str(value).encode(), value=str(value).encode())
    check(producer.flush(30) == 0, "unflushed messages")


def transactional_producer(transactional_id, settings=None):
    """A confluent-kafka producer with `transactional.id`, its transactions
    initialised (InitProducerId done); `settings` adds librdkafka's."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": transactional_id, "linger.ms": 5,
                         **(settings or {})})
    producer.init_transactions(30)
    return producer


def in_transaction(producer, topic, values, end="commit"):
    """One transaction of the transactional `producer`: `values` to
    partition 0 of `topic`, then `end` it: "commit", "abort", or None to
    leave it open."""
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value, partition=0)
    check(producer.flush(30) == 0, "produce did not finish")
    if end == "commit":
        producer.commit_transaction(30)
    elif end == "abort":
        producer.abort_transaction(30)


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


def read_partitions(bootstrap, topic, partitions, seconds=60):
    """Every record of partitions 0..`partitions`-1 of `topic` from offset 0
    to the end (librdkafka's partition EOF, which each must reach within
    `seconds`), as {partition: [(offset, value text)]}."""
    import time

    from confluent_kafka import Consumer, KafkaError, TopicPartition

    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
                       "enable.partition.eof": True, "fetch.wait.max.ms": 50})
    try:
        reader.assign([TopicPartition(topic, partition, 0) for partition in range(partitions)])
        read = {partition: [] for partition in range(partitions)}
        at_end = set()
        deadline = time.monotonic() + seconds
        while len(at_end) < partitions and time.monotonic() < deadline:
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    continue
                check(message.error().retriable(), f"consume error: {message.error()}")
                continue
            read[message.partition()].append((message.offset(), message.value().decode()))
        check(len(at_end) == partitions, f"every partition read to its end: {sorted(at_end)}")
        return read
    finally:
        reader.close()


def read_committed_values(consumer, expected, seconds=60):
    """Reads values with the assigned read_committed `consumer` until it
    has as many as `expected`, then checks that nothing follows (a record
    past the last committed one would be a leak) and that they are
    `expected`, in order."""
    import time

    seen = []
    deadline = time.monotonic() + seconds
    while len(seen) < len(expected) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        seen.append(message.value().decode())
    extra = consumer.poll(2.0)
    check(extra is None or extra.error() is not None, f"nothing after the committed records: {extra and extra.value()}")
    check(seen == expected, f"exactly the committed records, once, in order: {seen[:5]}... ({len(seen)} of {len(expected)})")


def replicated_topic(admin, topic, partitions, seconds=60):
    """Creates `topic` with `partitions` partitions and replication factor 3
    through confluent-kafka's AdminClient `admin`, and waits until each
    partition has a leader and three in-sync replicas; answers its metadata."""
    from confluent_kafka.admin import NewTopic

    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=3)]).values():
        future.result(30)

    def placed():
        found = admin.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None or len(found.partitions) != partitions:
            return None
        if any(partition.leader < 0 or len(partition.isrs) != 3 for partition in found.partitions.values()):
            return None
        return found

    return wait_for(placed, f"a leader and three in-sync replicas for every partition of {topic}", seconds)


def failover_producer(bootstrap):
    """An idempotent confluent-kafka producer with acks=all that rides out
    a cluster's leader changes: a minute per record, metadata refreshed
    every second."""
    from confluent_kafka import Producer

    return Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
        "retry.backoff.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
    })


def check_read_back(bootstrap, topic, partitions, acked, sent, seconds=60):
    """Reads `topic` back and checks that every one of the `sent` records,
    `acked` (value text -> (partition, offset), as `Deliveries` keeps it),
    is there exactly once, at the offset it was acknowledged with, in
    order, and nothing else is."""
    read = read_partitions(bootstrap, topic, partitions, seconds)
    for partition, records in read.items():
        values = [int(value) for _, value in records]
        check(values == sorted(values) and len(set(values)) == len(values), f"partition {partition}: in order, none twice")
        for offset, value in records:
            check(acked.get(value) == (partition, offset), f"{value} read at {partition}/{offset}, acknowledged at {acked.get(value)}")
    total = sum(len(records) for records in read.values())
    check(total == sent, f"every acknowledged record read once, nothing else: {total} of {sent}")


class Deliveries:
    """A producer's delivery reports: `acked` maps each acknowledged value's
    text to its (partition, offset), `acked_at` holds the monotonic time of
    each acknowledgement, `failed` describes each failed record. Pass
    `report` as `on_delivery`."""

    def __init__(self):
        self.acked = {}
        self.acked_at = []
        self.failed = []

    def report(self, error, message):
        import time

        if error is not None:
            self.failed.append(f"{message.value().decode()}: {error}")
        else:
            self.acked[message.value().decode()] = (message.partition(), message.offset())
            self.acked_at.append(time.monotonic())
