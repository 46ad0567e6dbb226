"""/metrics parsed with the Prometheus client's text parser: partition
offsets move after a Kafka produce, group lag after a commit, queue depth by
state after AMQP publishes and a held delivery; the traffic counters (in and
out per topic and queue, redelivered, dead-lettered) and open connections
per protocol move with that traffic."""
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

# Traffic counters: what went in and out of the topic and the queue.
reader = KafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False, auto_offset_reset="earliest")
reader.assign([TopicPartition(topic, 0)])
fetched = 0
for _ in range(100):
    fetched += sum(len(records) for records in reader.poll(timeout_ms=200).values())
    if fetched >= 5:
        break
reader.close()
check(fetched == 5, f"fetched {fetched} of 5 records")
channel.basic_nack(held.delivery_tag, requeue=True)
again, _properties, _body = channel.basic_get(queue)
check(again.redelivered, "the nacked message comes back redelivered")
channel.basic_ack(again.delivery_tag)
dead = unique("metered-dead")
dying = unique("metered-dying")
channel.queue_declare(dead)
channel.queue_declare(dying, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
channel.basic_publish("", dying, b"doomed")
doomed, _properties, _body = channel.basic_get(dying)
channel.basic_reject(doomed.delivery_tag, requeue=False)
channel.queue_declare(dead, passive=True)  # a round trip: the reject has been handled

counted = scrape()
check(value(counted, "conveyor_topic_messages_in_total", topic=topic) == 5, "5 records in")
check(value(counted, "conveyor_topic_bytes_in_total", topic=topic) > 0, "bytes in")
check(value(counted, "conveyor_topic_messages_out_total", topic=topic) >= 5, "at least 5 records fetched out")
check(value(counted, "conveyor_topic_bytes_out_total", topic=topic) > 0, "bytes out")
check(value(counted, "conveyor_queue_messages_in_total", queue=queue) == 3, "3 messages published")
check(value(counted, "conveyor_queue_bytes_in_total", queue=queue) == 6, "3 bodies of 2 bytes")
check(value(counted, "conveyor_queue_messages_out_total", queue=queue) == 2, "2 deliveries")
check(value(counted, "conveyor_queue_messages_redelivered_total", queue=queue) == 1, "1 redelivery")
check(value(counted, "conveyor_queue_messages_dead_lettered_total", queue=dying) == 1, "1 dead-lettered")
check(value(counted, "conveyor_queue_messages_in_total", queue=dead) == 1, "the dead letter arrived")
check(value(counted, "conveyor_connections", protocol="amqp") >= 1, "an open AMQP connection")
check(value(counted, "conveyor_connections", protocol="kafka") >= 1, "an open Kafka connection (the admin client)")
connection.close()
admin.close()
print("ok")
