"""Every door over TLS with the clients' own TLS settings: confluent-kafka
with security.protocol=SSL produces and consumes; pika opens an amqps
connection as a configured user; boto3 talks SQS to the HTTPS listener,
verifying the broker's certificate against the test CA."""
import ssl
import sys

import boto3
import pika
from confluent_kafka import Consumer, Producer

from common import AMQP_TLS, CA_FILE, HTTPS, KAFKA_TLS, check, consume_values, unique

user, password = sys.argv[1], sys.argv[2]

# Kafka: SSL (no SASL); a loopback client without credentials is anonymous.
topic = unique("tls-orders")
producer = Producer({"bootstrap.servers": KAFKA_TLS, "security.protocol": "SSL", "ssl.ca.location": CA_FILE})
for i in range(5):
    producer.produce(topic, key=b"k", value=f"over tls {i}".encode())
check(producer.flush(30) == 0, "every message delivered over SSL")
consumer = Consumer(
    {
        "bootstrap.servers": KAFKA_TLS,
        "security.protocol": "SSL",
        "ssl.ca.location": CA_FILE,
        "group.id": unique("tls-group"),
        "auto.offset.reset": "earliest",
    }
)
values = consume_values(consumer, topic, 5)
check(values == [f"over tls {i}".encode() for i in range(5)], f"consumed {values}")

# AMQP over TLS as a configured user.
context = ssl.create_default_context(cafile=CA_FILE)
host, port = AMQP_TLS.removeprefix("amqps://").rsplit(":", 1)
parameters = pika.ConnectionParameters(
    host=host,
    port=int(port),
    credentials=pika.PlainCredentials(user, password),
    ssl_options=pika.SSLOptions(context, host),
)
connection = pika.BlockingConnection(parameters)
channel = connection.channel()
queue = unique("tls-queue")
channel.queue_declare(queue, exclusive=True)
channel.confirm_delivery()
channel.basic_publish("", queue, b"hello over amqps")
_method, _properties, body = channel.basic_get(queue, auto_ack=True)
check(body == b"hello over amqps", f"got {body}")
connection.close()

# SQS over HTTPS, the certificate verified.
sqs = boto3.client(
    "sqs",
    endpoint_url=f"https://{HTTPS}",
    region_name="us-east-1",
    aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="secret",
    verify=CA_FILE,
)
url = sqs.create_queue(QueueName=unique("tls-sqs"))["QueueUrl"]
sqs.send_message(QueueUrl=url, MessageBody="hello over https")
messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
check([m["Body"] for m in messages] == ["hello over https"], f"got {messages}")
print("clients over TLS ok")
