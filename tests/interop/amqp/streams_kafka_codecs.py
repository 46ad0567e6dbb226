"""A stream declared over a one-partition Kafka topic whose records came in
compressed batches: confluent-kafka producers with `compression.type`
each of gzip, snappy, lz4 and zstd write batches of several records, and a
pika stream consumer from `first` gets every record, in order, each with
the offset Kafka acknowledged as its `x-stream-offset`."""
import os

import pika
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from common import URL, check, pump_until, unique, read_stream

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
CODECS = ["gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 25

topic = unique("compressed-topic")
admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)]).values():
    future.result(timeout=30)

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
    check(producer.flush(30) == 0, f"{codec}: unflushed messages")
    check(not errors, f"{codec}: delivery errors {errors}")
acknowledged.sort()
check([offset for offset, _ in acknowledged] == list(range(PER_CODEC * len(CODECS))),
      f"acknowledged offsets: {[offset for offset, _ in acknowledged]}")

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel, deliveries = read_stream(connection, topic)
pump_until(connection, lambda: len(deliveries) >= len(acknowledged), "every compressed record over AMQP", seconds=20)
connection.process_data_events(time_limit=0.2)
check(deliveries == acknowledged,
      f"the stream consumer got {len(deliveries)} deliveries, first {deliveries[:2]}, want {acknowledged[:2]}")
channel.close()
connection.channel().queue_delete(topic)
connection.close()
print("compressed batches over a stream ok")
