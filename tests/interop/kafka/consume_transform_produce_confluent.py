"""confluent-kafka (librdkafka) consume-transform-produce: a transactional
producer sends its output and the input consumer's offsets in one
transaction (send_offsets_to_transaction); an aborted transaction's output
is invisible to read_committed readers and its offsets are not committed,
so a restarted worker resumes after the last committed transaction and the
output holds each input exactly once."""
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import BOOTSTRAP, check, transactional_producer, unique

source, sink, group = unique("ctp-in"), unique("ctp-out"), unique("ctp-group")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1) for name in (source, sink)]).values():
    future.result(timeout=30)
plain = Producer({"bootstrap.servers": BOOTSTRAP})
for i in range(30):
    plain.produce(source, value=str(i).encode())
check(plain.flush(30) == 0, "unflushed input")

producer = transactional_producer(unique("ctp-id"))


def worker():
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([source])
    return consumer


def process(consumer, count, commit):
    """Reads `count` inputs and writes their doubles in one transaction."""
    producer.begin_transaction()
    taken, deadline = [], time.monotonic() + 30
    while len(taken) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        check(message.error() is None, f"consumer error {message.error()}")
        taken.append(int(message.value()))
        producer.produce(sink, value=str(int(message.value()) * 2).encode())
    check(len(taken) == count, f"took {taken}")
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 30)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)
    return taken


consumer = worker()
first = process(consumer, 10, commit=True)
check(first == list(range(10)), f"first batch {first}")
aborted = process(consumer, 10, commit=False)
check(aborted == list(range(10, 20)), f"aborted batch {aborted}")
committed = consumer.committed([TopicPartition(source, 0)], timeout=30)[0].offset
check(committed == 10, f"the aborted transaction's offsets counted: committed offset {committed}")
consumer.close()

# A new worker resumes after the last committed transaction.
consumer = worker()
rest = process(consumer, 20, commit=True)
check(rest == list(range(10, 30)), f"resumed with {rest}")
check(consumer.committed([TopicPartition(source, 0)], timeout=30)[0].offset == 30, "final committed offset")
consumer.close()

reader = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("ctp-check"), "isolation.level": "read_committed",
                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
reader.assign([TopicPartition(sink, 0, 0)])
output, deadline = [], time.monotonic() + 10
while time.monotonic() < deadline:
    message = reader.poll(0.3)
    if message is not None and message.error() is None:
        output.append(int(message.value()))
reader.close()
check(sorted(output) == [2 * i for i in range(30)], f"output {sorted(output)}")
print("ok")
