"""/metrics parsed with the Prometheus client's text parser: partition
offsets move after a Kafka produce, group lag after a commit, queue depth by
state after AMQP publishes and a held delivery."""
import os
import sys
import urllib.request

import pika
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402

HTTP = os.environ["CONVEYOR_HTTP"]
KAFKA = os.environ["CONVEYOR_KAFKA"]
AMQP = os.environ["CONVEYOR_AMQP"]


def scrape():
    with urllib.request.urlopen(f"http://{HTTP}/metrics", timeout=10) as response:
        check(response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), "exposition content type")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


topic = unique("metered")
admin = KafkaAdminClient(bootstrap_servers=KAFKA)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
before = scrape()
check(value(before, "conveyor_partition_high_watermark", topic=topic, partition="0") == 0, "new topic at offset 0")

producer = KafkaProducer(bootstrap_servers=KAFKA)
for index in range(5):
    producer.send(topic, f"v{index}".encode()).get(timeout=30)
producer.close()
group = unique("metered-group")
consumer = KafkaConsumer(bootstrap_servers=KAFKA, group_id=group, enable_auto_commit=False)
consumer.assign([TopicPartition(topic, 0)])
consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(2, "", -1)})
consumer.close()

connection = pika.BlockingConnection(pika.URLParameters(AMQP))
channel = connection.channel()
queue = unique("metered-queue")
channel.queue_declare(queue)
channel.confirm_delivery()
for index in range(3):
    channel.basic_publish("", queue, f"m{index}".encode())
held, _properties, _body = channel.basic_get(queue)

after = scrape()
check(value(after, "conveyor_partition_high_watermark", topic=topic, partition="0") == 5, "high watermark after 5 records")
check(value(after, "conveyor_partition_log_size_bytes", topic=topic, partition="0") > 0, "log size grew")
check(value(after, "conveyor_consumer_group_lag", group=group, topic=topic, partition="0") == 3, "lag = 5 - committed 2")
check(value(after, "conveyor_queue_messages", queue=queue, state="ready") == 2, "2 ready")
check(value(after, "conveyor_queue_messages", queue=queue, state="unacked") == 1, "1 unacked")
check(value(after, "conveyor_queue_consumers", queue=queue) == 0, "no consumers")
channel.basic_ack(held.delivery_tag)
connection.close()
print("ok")
