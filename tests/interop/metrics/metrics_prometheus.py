"""/metrics parsed with the Prometheus client's text parser: partition
offsets move after a Kafka produce, group lag after a commit, queue depth by
state after AMQP publishes and a held delivery; the traffic counters (in and
out per topic and queue, redelivered, dead-lettered), open connections and
channels per protocol, queue log sizes, and the request latency (Kafka API,
AMQP method, SQS and SNS action, admin route) and fsync latency histograms move with
that traffic."""
import json
import os
import re
import sys
import urllib.request

import boto3
import botocore.exceptions
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


def histogram_count(samples, name, **labels):
    """A histogram's _count (0 when the series does not exist yet), after
    checking its buckets are cumulative and +Inf equals the count."""
    count = value(samples, f"{name}_count", **labels)
    if count is None:
        return 0
    buckets = sorted(
        (float(dict(key)["le"]), sample) for (sample_name, key), sample in samples.items()
        if sample_name == f"{name}_bucket" and {k: v for k, v in key if k != "le"} == labels
    )
    check(len(buckets) > 1 and buckets[-1][0] == float("inf"), f"{name} {labels} has buckets up to +Inf")
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"{name} {labels} buckets are cumulative")
    check(buckets[-1][1] == count, f"{name} {labels}: +Inf bucket {buckets[-1][1]} != count {count}")
    check(value(samples, f"{name}_sum", **labels) >= 0, f"{name} {labels} has a sum")
    return count


def requests(samples, protocol, api):
    return histogram_count(samples, "conveyor_request_duration_seconds", protocol=protocol, api=api)


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
check(value(counted, "conveyor_queue_log_size_bytes", queue=queue) > 0, "the queue's log holds its messages")

# Latency histograms: every front door times its requests, the log writers their fsyncs.
check(value(counted, "conveyor_channels", protocol="amqp") >= 1, "the open AMQP channel")
check(value(counted, "conveyor_channels", protocol="kafka") == 0, "Kafka has no channels")
check(requests(counted, "kafka", "Produce") >= requests(before, "kafka", "Produce") + 5, "5 more Produce requests timed")
check(requests(counted, "kafka", "Fetch") > requests(before, "kafka", "Fetch"), "Fetch requests timed")
check(requests(counted, "kafka", "CreateTopics") >= 1, "the CreateTopics request timed")
check(requests(counted, "amqp", "basic.publish") >= requests(before, "amqp", "basic.publish") + 4, "publishes timed to storage")
check(requests(counted, "amqp", "queue.declare") >= 4, "queue.declare timed")
check(requests(counted, "amqp", "basic.get") >= 3, "basic.get timed")
fsyncs = histogram_count(counted, "conveyor_fsync_duration_seconds")
check(fsyncs > histogram_count(before, "conveyor_fsync_duration_seconds"), "fsyncs timed under durability always")

sqs = boto3.client("sqs", endpoint_url=f"http://{HTTP}", region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
sqs.create_queue(QueueName=unique("metered-sqs"))
sqs.list_queues()
sns = boto3.client("sns", endpoint_url=f"http://{HTTP}", region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
sns.list_topics()
try:
    sns.publish(TopicArn="arn:aws:sns:us-east-1:000000000000:" + unique("missing"), Message="lost")
    check(False, "publishing to a missing SNS topic fails")
except botocore.exceptions.ClientError as error:
    status = error.response["ResponseMetadata"]["HTTPStatusCode"]
    check(400 <= status < 500, f"a missing topic is a client error, not {status}")
with urllib.request.urlopen(f"http://{HTTP}/api/v1/overview", timeout=10) as response:
    check(response.status == 200, "overview answered")
timed = scrape()
check(requests(timed, "sqs", "CreateQueue") == requests(counted, "sqs", "CreateQueue") + 1, "CreateQueue timed")
check(requests(timed, "sqs", "ListQueues") >= 1, "ListQueues timed")
check(requests(timed, "admin", "GET /api/v1/overview") >= 1, "the admin route timed")
check(requests(timed, "sns", "ListTopics") >= 1, "SNS ListTopics timed")
check(requests(timed, "sns", "Publish") >= 1, "a failed SNS Publish is timed too")
check(histogram_count(timed, "conveyor_fsync_duration_seconds") > fsyncs, "the SQS queue's creation fsynced")

# The Grafana dashboard in the repository queries only series that exist.

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
with open(os.path.join(root, "dashboards", "grafana-conveyor.json"), encoding="utf-8") as file:
    dashboard = json.load(file)
names = {name for name, _labels in timed}
queried = set()
for panel in dashboard["panels"]:
    for target in panel["targets"]:
        queried.update(re.findall(r"\bconveyor_[a-z_]+", target["expr"]))
check(len(queried) >= 15, f"the dashboard queries the metric families ({sorted(queried)})")
missing = sorted(name for name in queried if name not in names)
check(not missing, f"the dashboard queries series /metrics does not have: {missing}")
connection.close()
admin.close()
print("ok")
