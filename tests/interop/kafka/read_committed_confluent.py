"""confluent-kafka (librdkafka) read_committed consumers: they see only
committed transactional data (an aborted transaction's records never),
stop at the last stable offset while a transaction is open and read
through once it commits; ListOffsets with read_committed answers the last
stable offset; a read_uncommitted consumer sees the open transaction's
records at once."""
import time

from confluent_kafka import Consumer, IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from common import BOOTSTRAP, check, create_topics, transactional_producer, unique

topic = unique("rc")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
create_topics(admin, [topic], partitions=2)
partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]

producer = transactional_producer(unique("rc-id"))


def send(values):
    for value in values:
        producer.produce(topic, partition=value % 2, value=str(value).encode())
    check(producer.flush(30) == 0, "unflushed messages")


producer.begin_transaction()
send(range(0, 10))
producer.commit_transaction(30)
producer.begin_transaction()
send(range(100, 110))
producer.abort_transaction(30)
producer.begin_transaction()
send(range(10, 14))
producer.commit_transaction(30)


def consumer(isolation):
    reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("reader"), "enable.auto.commit": False,
                       "isolation.level": isolation, "fetch.wait.max.ms": 10000})
    reader.assign([TopicPartition(topic, p, 0) for p in (0, 1)])
    return reader


def drain(reader, values, until, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until(values):
        message = reader.poll(0.2)
        if message is None:
            continue
        check(message.error() is None, f"consumer error {message.error()}")
        values.append(int(message.value()))
    return values


committed = consumer("read_committed")
values = drain(committed, [], lambda seen: False, 5)
check(sorted(values) == list(range(14)), f"read_committed saw {sorted(values)}")


def latest(isolation):
    specs = {tp: OffsetSpec.latest() for tp in partitions}
    found = admin.list_offsets(specs, isolation_level=isolation)
    return {tp.partition: future.result(timeout=30).offset for tp, future in found.items()}


high = latest(IsolationLevel.READ_UNCOMMITTED)
check(latest(IsolationLevel.READ_COMMITTED) == high, f"no open transaction: LSO {latest(IsolationLevel.READ_COMMITTED)} != HW {high}")

# An open transaction: read_committed readers stop before it.
producer.begin_transaction()
send(range(200, 206))
uncommitted = drain(consumer("read_uncommitted"), [], lambda seen: all(v in seen for v in range(200, 206)), 30)
check(all(v in uncommitted for v in range(200, 206)), f"read_uncommitted did not see the open transaction: {uncommitted}")
stable = latest(IsolationLevel.READ_COMMITTED)
check(stable == high, f"read_committed latest {stable} moved past the open transaction (was {high})")
check(latest(IsolationLevel.READ_UNCOMMITTED) == {0: high[0] + 3, 1: high[1] + 3}, "the open transaction's records")
more = drain(committed, [], lambda seen: False, 3)
check(more == [], f"read_committed read into the open transaction: {more}")

producer.commit_transaction(30)
# The commit wakes the reader's parked fetch (fetch.wait.max.ms is 10 s).
more = drain(committed, [], lambda seen: sorted(seen) == list(range(200, 206)), 5)
check(sorted(more) == list(range(200, 206)), f"within 5 s of the commit read_committed got {more}")
check(latest(IsolationLevel.READ_COMMITTED) == latest(IsolationLevel.READ_UNCOMMITTED), "LSO != HW after the commit")
committed.close()
print("ok")
