"""confluent-kafka (librdkafka) transactions: a transactional producer
commits and aborts across two partitions; a read_uncommitted consumer sees
every record, never a marker, and its position ends at the high watermark
(markers take offsets); a second producer with the same transactional.id
fences the first, whose open transaction is aborted and whose commit fails
fatally."""
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from common import BOOTSTRAP, check, create_topics, transactional_producer, unique

topic = unique("txn")
transactional_id = unique("txn-id")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=2)


def send(producer, values):
    for value in values:
        producer.produce(topic, partition=value % 2, value=str(value).encode())
    check(producer.flush(30) == 0, "unflushed messages")


producer = transactional_producer(transactional_id)
producer.begin_transaction()
send(producer, range(0, 10))
producer.commit_transaction(30)
producer.begin_transaction()
send(producer, range(100, 105))
producer.abort_transaction(30)
producer.begin_transaction()
send(producer, range(10, 13))
producer.commit_transaction(30)


def read_all(isolation, expected_count, seconds=30):
    """Every record of both partitions and the final positions."""
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("reader"), "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": True})
    partitions = [TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)]
    consumer.assign(partitions)
    records, at_eof = [], set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (len(at_eof) < 2 or len(records) < expected_count):
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            check(message.error().code() == KafkaError._PARTITION_EOF, f"consumer error {message.error()}")
            at_eof.add(message.partition())
            continue
        at_eof.discard(message.partition())
        records.append((message.partition(), message.offset(), int(message.value())))
    positions = {tp.partition: tp.offset for tp in consumer.position(partitions)}
    consumer.close()
    return records, positions


records, positions = read_all("read_uncommitted", 18)
values = sorted(value for _, _, value in records)
check(values == list(range(13)) + list(range(100, 105)), f"read_uncommitted saw {values}")
for partition in (0, 1):
    offsets = [offset for p, offset, _ in records if p == partition]
    check(offsets == sorted(offsets) and len(set(offsets)) == len(offsets), f"partition {partition} offsets {offsets}")
    low, high = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("wm")}).get_watermark_offsets(
        TopicPartition(topic, partition), timeout=10)
    # Three transactions, each ending with one marker per partition.
    check(high == len(offsets) + 3, f"partition {partition}: high watermark {high} for {len(offsets)} records + 3 markers")
    check(positions[partition] == high, f"partition {partition}: position {positions[partition]} != high watermark {high}")

# A second producer with the same transactional.id fences the first and
# aborts the first's open transaction.
producer.begin_transaction()
send(producer, range(200, 203))
successor = transactional_producer(transactional_id)
try:
    producer.commit_transaction(30)
    check(False, "the fenced producer committed")
except KafkaException as error:
    check(error.args[0].fatal() or error.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                                             KafkaError.INVALID_PRODUCER_EPOCH),
          f"the fenced producer's commit failed with {error.args[0]}")
successor.begin_transaction()
send(successor, range(300, 302))
successor.commit_transaction(30)
records, _ = read_all("read_uncommitted", 23)
values = sorted(value for _, _, value in records)
check(values == list(range(13)) + list(range(100, 105)) + [200, 201, 202, 300, 301], f"after fencing: {values}")
print("ok")
