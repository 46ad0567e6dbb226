"""confluent-kafka (librdkafka) transaction.timeout.ms: a transaction left
open past its timeout is aborted by the broker (read_committed readers
never see it and the last stable offset moves on), the producer's late
commit fails, and a new producer with the same transactional.id carries on."""
import time

from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from common import BOOTSTRAP, check, create_topics, transactional_producer, unique

topic, transactional_id = unique("txn-timeout"), unique("txn-timeout-id")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic])
partition = TopicPartition(topic, 0)


def latest(isolation):
    return admin.list_offsets({partition: OffsetSpec.latest()}, isolation_level=isolation)[partition].result(timeout=30).offset


def producer(timeout_ms):
    return transactional_producer(transactional_id, {"transaction.timeout.ms": timeout_ms})


slow = producer(3000)
slow.begin_transaction()
for i in range(5):
    slow.produce(topic, partition=0, value=f"late-{i}".encode())
check(slow.flush(30) == 0, "unflushed")
check(latest(IsolationLevel.READ_COMMITTED) == 0, "the open transaction is below the last stable offset")
started = time.monotonic()
deadline = started + 30
while latest(IsolationLevel.READ_COMMITTED) == 0:
    check(time.monotonic() < deadline, "the expired transaction was never aborted")
    time.sleep(0.2)
waited = time.monotonic() - started
check(waited >= 1.5, f"aborted after {waited:.1f} s, before its 3 s timeout")
check(latest(IsolationLevel.READ_COMMITTED) == latest(IsolationLevel.READ_UNCOMMITTED) == 6, "5 records and the abort marker")
try:
    slow.commit_transaction(30)
    check(False, "the timed-out transaction committed")
except KafkaException as error:
    print(f"late commit refused: {error.args[0]}")

fresh = producer(60000)
fresh.begin_transaction()
fresh.produce(topic, partition=0, value=b"on-time")
fresh.commit_transaction(30)
reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("check"), "isolation.level": "read_committed",
                   "enable.auto.commit": False})
reader.assign([TopicPartition(topic, 0, 0)])
values, deadline = [], time.monotonic() + 10
while time.monotonic() < deadline and values != [b"on-time"]:
    message = reader.poll(0.3)
    if message is not None and message.error() is None:
        values.append(message.value())
reader.close()
check(values == [b"on-time"], f"read_committed saw {values}")
print("ok")
