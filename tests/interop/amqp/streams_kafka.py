"""A stream queue is a one-partition Kafka topic of the same name, with the
same offsets: pika publishes to a stream and kafka-python (assigned, and in
a consumer group that commits) and confluent-kafka read the same messages
at the same offsets; a kafka-python producer writes the stream's topic and a
pika stream consumer reads those records from an `x-stream-offset`, each
delivery's header the offset Kafka acknowledged (compressed batches:
streams_kafka_codecs.py). The stream's log is
deleted as a queue (DeleteTopics is refused with POLICY_VIOLATION), and
deleting the queue takes the topic away. A stream declared with the name of
a one-partition Kafka topic reads and writes that topic (which DeleteTopics
then refuses); one of a wider topic is refused."""
import os
import time

import pika
from confluent_kafka import Consumer as ConfluentConsumer
from confluent_kafka import TopicPartition as ConfluentPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import PolicyViolationError

from common import URL, check, pump_until, unique

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
stream = unique("stream")
channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
channel.confirm_delivery()
for index in range(10):
    channel.basic_publish("", stream, f"amqp-{index}".encode())

published = [(index, f"amqp-{index}".encode()) for index in range(10)]


def deadline_loop(what, seconds=20):
    """Yields until the caller breaks; fails with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
    check(False, f"timed out waiting for {what}")


def read_partition(reader, topic, offset, count, what):
    """(offset, value) of `count` records of partition 0 of `topic` from `offset`, read by `reader`."""
    partition = TopicPartition(topic, 0)
    reader.assign([partition])
    reader.seek(partition, offset)
    got = []
    for _ in deadline_loop(what):
        for records in reader.poll(timeout_ms=200).values():
            got.extend((record.offset, record.value) for record in records)
        if len(got) >= count:
            return got


# Kafka's view: one partition, offsets 0..10.
partition = TopicPartition(stream, 0)
reader = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
check(reader.partitions_for_topic(stream) == {0}, f"partitions of the stream: {reader.partitions_for_topic(stream)}")
check(reader.beginning_offsets([partition]) == {partition: 0}, "the stream's first offset")
check(reader.end_offsets([partition]) == {partition: 10}, f"the stream's end: {reader.end_offsets([partition])}")
got = read_partition(reader, stream, 0, 10, "kafka-python to read the stream")
check(got == published, f"kafka-python read {got}")
reader.close()

# A consumer group reads it from earliest and commits on it.
group = unique("stream-readers")
member = KafkaConsumer(stream, bootstrap_servers=BOOTSTRAP, group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
got = []
for _ in deadline_loop("the group member to read the stream"):
    for records in member.poll(timeout_ms=200).values():
        got.extend((record.offset, record.value) for record in records)
    if len(got) >= 10:
        break
check(got == published, f"the group member read {got}")
member.commit()
check(member.committed(partition) == 10, f"committed: {member.committed(partition)}")
member.close()

# confluent-kafka (librdkafka) reads the same offsets, resuming from the group's commit.
confluent = ConfluentConsumer({"bootstrap.servers": BOOTSTRAP, "group.id": unique("confluent"),
                               "enable.auto.commit": False})
confluent.assign([ConfluentPartition(stream, 0, 3)])
got = []
for _ in deadline_loop("confluent-kafka to read the stream"):
    message = confluent.poll(0.2)
    if message is not None:
        check(message.error() is None, f"confluent-kafka: {message.error()}")
        got.append((message.offset(), message.value()))
    if len(got) >= 7:
        break
check(got == published[3:], f"confluent-kafka read {got}")
confluent.close()

# A Kafka producer writes the stream's topic; a stream consumer reads it from an offset.
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
offsets = [producer.send(stream, key=f"k{index}".encode(), value=f"kafka-{index}".encode()).get(timeout=10).offset
           for index in range(5)]
producer.close()
check(offsets == list(range(10, 15)), f"the Kafka producer's offsets: {offsets}")

reading = connection.channel()
reading.basic_qos(prefetch_count=3)
deliveries = []


def on_message(ch, method, properties, body):
    deliveries.append((properties.headers["x-stream-offset"], body))
    ch.basic_ack(method.delivery_tag)


tag = reading.basic_consume(stream, on_message, arguments={"x-stream-offset": 10})
pump_until(connection, lambda: len(deliveries) >= 5, "the Kafka-produced records over AMQP")
check(deliveries == [(10 + index, f"kafka-{index}".encode()) for index in range(5)], f"the stream consumer got {deliveries}")
reading.basic_cancel(tag)
reading.close()

# The stream's retention in Kafka's words.
retained = unique("retained-stream")
channel.queue_declare(retained, durable=True,
                      arguments={"x-queue-type": "stream", "x-max-age": "2h", "x-max-length-bytes": 20_000_000})
describing = AdminClient({"bootstrap.servers": BOOTSTRAP})
described = describing.describe_configs(
    [ConfigResource("topic", stream), ConfigResource("topic", retained)])
configs = {resource.name: future.result(timeout=10) for resource, future in described.items()}
kept = {name: configs[stream][name].value for name in ("retention.ms", "retention.bytes")}
check(kept == {"retention.ms": "-1", "retention.bytes": "-1"}, f"a stream without retention: {kept}")
bounded = {name: configs[retained][name].value for name in ("retention.ms", "retention.bytes")}
check(bounded == {"retention.ms": "7200000", "retention.bytes": "20000000"}, f"a stream's retention: {bounded}")
channel.queue_delete(retained)

# The log is the queue's: DeleteTopics is refused, a stream cannot take a topic's name.
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
try:
    admin.delete_topics([stream])
    check(False, "DeleteTopics of a stream was accepted")
except PolicyViolationError:
    pass

# A Kafka topic of one partition is read and written as a stream of its name.
topic = unique("topic")
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
for index in range(3):
    producer.send(topic, value=f"first-{index}".encode()).get(timeout=10)
producer.flush()
adopting = connection.channel()
adopting.queue_declare(topic, durable=True, arguments={"x-queue-type": "stream"})
adopting.basic_qos(prefetch_count=10)
over_topic = []


def on_topic_message(ch, method, properties, body):
    over_topic.append((properties.headers["x-stream-offset"], body))
    ch.basic_ack(method.delivery_tag)


adopting.basic_consume(topic, on_topic_message, arguments={"x-stream-offset": "first"})
pump_until(connection, lambda: len(over_topic) >= 3, "the topic's records as a stream")
check(over_topic == [(index, f"first-{index}".encode()) for index in range(3)], f"the stream over the topic: {over_topic}")
adopting.basic_publish("", topic, b"from amqp")
after = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
read_back = read_partition(after, topic, 3, 1, "the stream's publish in the topic")
check(read_back == [(3, b"from amqp")], f"the topic after an AMQP publish: {read_back}")
after.close()
try:
    admin.delete_topics([topic])
    check(False, "DeleteTopics of a topic a stream reads was accepted")
except PolicyViolationError:
    pass
adopting.close()
channel.queue_delete(topic)
admin.delete_topics([topic])

# A stream reads one log: a topic of several partitions is no stream.
wide = unique("wide")
admin.create_topics([NewTopic(wide, num_partitions=3, replication_factor=1)])
probe = connection.channel()
try:
    probe.queue_declare(wide, durable=True, arguments={"x-queue-type": "stream"})
    check(False, "a stream over a three-partition topic was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406 and "3 partitions" in error.reply_text, f"a stream over a wide topic: {error}")

# Deleting the queue takes the topic away.
channel.queue_delete(stream)
for _ in deadline_loop("the deleted stream to leave Kafka's metadata"):
    if stream not in admin.list_topics():
        break
admin.close()
connection.close()
print("streams over kafka ok")
