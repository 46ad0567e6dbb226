"""A stream over a Kafka topic that a transactional confluent-kafka producer
writes is read as Kafka's read_committed consumers read it: a pika stream
consumer from `first` gets the committed transaction's records and never
the aborted one's; while a transaction is open it stops at the last stable
offset (a later non-transactional record waits too), and once that
transaction commits it reads through."""
import os
import time

import pika
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import URL, check, pump_until, unique, read_stream

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")

topic = unique("transactional-topic")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
    future.result(timeout=30)

producer = Producer({"bootstrap.servers": BOOTSTRAP, "transactional.id": unique("stream-txn"), "linger.ms": 5})
producer.init_transactions(30)


def transaction(values, commit):
    producer.begin_transaction()
    for value in values:
        producer.produce(topic, value=value.encode())
    check(producer.flush(30) == 0, "unflushed transactional messages")
    if commit:
        producer.commit_transaction(30)
    else:
        producer.abort_transaction(30)


transaction(["aborted-0", "aborted-1", "aborted-2"], commit=False)
transaction(["committed-0", "committed-1"], commit=True)

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel, delivered = read_stream(connection, topic)


def bodies():
    return [body.decode() for _, body in delivered]


pump_until(connection, lambda: len(delivered) >= 2, "the committed records over AMQP")
check(bodies() == ["committed-0", "committed-1"], f"committed data only: {bodies()}")

# An open transaction holds back everything after its first record.
producer.begin_transaction()
producer.produce(topic, value=b"pending")
check(producer.flush(30) == 0, "unflushed transactional message")
plain = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 0})
plain.produce(topic, value=b"after-pending")
check(plain.flush(30) == 0, "unflushed message")
# The stream consumer is idle and woken by every write: give it the time
# a delivery would take, bounded, and check that nothing came.
deadline = time.monotonic() + 1.5
while time.monotonic() < deadline:
    connection.process_data_events(time_limit=0.05)
check(bodies() == ["committed-0", "committed-1"], f"nothing past the last stable offset: {bodies()}")
producer.commit_transaction(30)
pump_until(connection, lambda: len(delivered) >= 4, "the records after the commit")
check(bodies() == ["committed-0", "committed-1", "pending", "after-pending"], f"read through after the commit: {bodies()}")
connection.process_data_events(time_limit=0.2)
check(len(delivered) == 4, f"no marker and no aborted record delivered: {bodies()}")
channel.close()
connection.channel().queue_delete(topic)
connection.close()
print("transactional producers fenced off streams ok")
