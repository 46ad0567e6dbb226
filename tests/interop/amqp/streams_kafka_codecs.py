"""Compressed batches in a stream, both ways a stream is a Kafka topic:
confluent-kafka producers with `compression.type` each of gzip, snappy,
lz4 and zstd write batches of several records into a stream declared over
a one-partition Kafka topic, and into a stream pika declared (its own
log's topic); a pika stream consumer from `first` gets every record, in
order, each with the offset Kafka acknowledged as its `x-stream-offset`."""
import os

import pika
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import URL, check, pump_until, unique, read_stream

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
CODECS = ["gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 25


def produce_compressed(topic):
    """Produces PER_CODEC records with each codec into `topic`; returns the
    (offset, value) pairs Kafka acknowledged, by offset."""
    acknowledged = []
    for codec in CODECS:
        producer = Producer({"bootstrap.servers": BOOTSTRAP, "compression.type": codec, "linger.ms": 20})
        errors = []

        def delivered(error, message):
            if error:
                errors.append(error)
            else:
                acknowledged.append((message.offset(), message.value()))

        for index in range(PER_CODEC):
            # Compressible values, so librdkafka keeps the batch compressed.
            producer.produce(topic, key=f"{codec}-{index}".encode(), value=f"{codec}-{index}-".encode() * 20,
                             on_delivery=delivered)
        check(producer.flush(30) == 0, f"{topic} {codec}: unflushed messages")
        check(not errors, f"{topic} {codec}: delivery errors {errors}")
    acknowledged.sort()
    return acknowledged


def check_stream_delivers(connection, stream, acknowledged, first_offset):
    want = list(range(first_offset, first_offset + PER_CODEC * len(CODECS)))
    check([offset for offset, _ in acknowledged] == want,
          f"{stream}: acknowledged offsets {[offset for offset, _ in acknowledged]}")
    channel, deliveries = read_stream(connection, stream)
    pump_until(connection, lambda: len(deliveries) >= len(acknowledged) + first_offset,
               f"every compressed record of {stream} over AMQP", seconds=20)
    connection.process_data_events(time_limit=0.2)
    check(deliveries[first_offset:] == acknowledged,
          f"{stream}: the stream consumer got {len(deliveries)} deliveries, "
          f"from the first compressed one {deliveries[first_offset:first_offset + 2]}, want {acknowledged[:2]}")
    channel.close()
    connection.channel().queue_delete(stream)


connection = pika.BlockingConnection(pika.URLParameters(URL))

# A stream over a Kafka topic's log.
topic = unique("compressed-topic")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
    future.result(timeout=30)
check_stream_delivers(connection, topic, produce_compressed(topic), 0)

# A stream's own log, written through its topic: after two AMQP messages.
stream = unique("compressed-stream")
channel = connection.channel()
channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
channel.confirm_delivery()
for index in range(2):
    channel.basic_publish("", stream, f"amqp-{index}".encode())
channel.close()
check_stream_delivers(connection, stream, produce_compressed(stream), 2)

connection.close()
print("compressed batches over a stream ok")
