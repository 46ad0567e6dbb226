"""kafka-python: keyed messages land in one partition per key and keep their
order there; admin creates the topic with 3 partitions."""
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from common import BOOTSTRAP, check, unique

topic = unique("keyed")
admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])

producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=False)
sent = {}
for i in range(60):
    key = f"user-{i % 6}".encode()
    metadata = producer.send(topic, key=key, value=f"{i}".encode()).get(timeout=10)
    sent.setdefault(key, []).append((metadata.partition, metadata.offset, i))
producer.flush()

for key, records in sent.items():
    partitions = {partition for partition, _, _ in records}
    check(len(partitions) == 1, f"key {key} spread over partitions {partitions}")
    offsets = [offset for _, offset, _ in records]
    check(offsets == sorted(offsets), f"offsets of {key} not increasing: {offsets}")

consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False, consumer_timeout_ms=5000)
partitions = [TopicPartition(topic, p) for p in range(3)]
consumer.assign(partitions)
consumer.seek_to_beginning(*partitions)
received = {}
for message in consumer:
    received.setdefault(message.key, []).append(int(message.value))
    if sum(len(values) for values in received.values()) == 60:
        break
for key, records in sent.items():
    check(received.get(key) == [i for _, _, i in records], f"key {key}: sent {[i for _, _, i in records]}, got {received.get(key)}")
end = consumer.end_offsets(partitions)
check(sum(end.values()) == 60, f"end offsets {end} do not add up to 60")
print("ok")
