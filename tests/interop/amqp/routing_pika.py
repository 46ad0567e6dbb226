"""pika: each exchange type routes as RabbitMQ does — direct by key, topic
patterns `order.*` and `#.shipped`, headers x-match all/any — plus
exchange-to-exchange bindings, an alternate exchange for unroutable
messages, mandatory publishes returned, and a message published over AMQP
to an exchange bound to a Kafka topic read back by a Kafka consumer."""
import sys

import pika
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from common import URL, check, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
suffix = unique("r")


def queue(name):
    full = f"{name}-{suffix}"
    channel.queue_declare(full, durable=True)
    return full


def drain(name):
    bodies = []
    for _ in range(100):
        method, _properties, body = channel.basic_get(name, auto_ack=True)
        if method is None:
            return sorted(bodies)
        bodies.append(body.decode())
    return sorted(bodies)


# Direct.
channel.exchange_declare(f"direct-{suffix}", "direct", durable=True)
payments, refunds = queue("payments"), queue("refunds")
channel.queue_bind(payments, f"direct-{suffix}", "payment")
channel.queue_bind(refunds, f"direct-{suffix}", "refund")
for key in ["payment", "refund", "payment", "other"]:
    channel.basic_publish(f"direct-{suffix}", key, key.encode())
check(drain(payments) == ["payment", "payment"], "direct: payments")
check(drain(refunds) == ["refund"], "direct: refunds")

# Topic patterns from the seeds.
channel.exchange_declare(f"topic-{suffix}", "topic", durable=True)
orders, shipped = queue("orders"), queue("shipped")
channel.queue_bind(orders, f"topic-{suffix}", "order.*")
channel.queue_bind(shipped, f"topic-{suffix}", "#.shipped")
for key in ["order.placed", "order.shipped", "order.eu.shipped", "shipped", "order", "invoice.paid"]:
    channel.basic_publish(f"topic-{suffix}", key, key.encode())
check(drain(orders) == ["order.placed", "order.shipped"], "topic order.*")
check(drain(shipped) == ["order.eu.shipped", "order.shipped", "shipped"], "topic #.shipped")

# Headers all / any.
channel.exchange_declare(f"headers-{suffix}", "headers", durable=True)
both, either = queue("both"), queue("either")
channel.queue_bind(both, f"headers-{suffix}", "", arguments={"x-match": "all", "format": "pdf", "type": "report"})
channel.queue_bind(either, f"headers-{suffix}", "", arguments={"x-match": "any", "format": "pdf", "type": "report"})
for name, headers in [("pdf-report", {"format": "pdf", "type": "report"}), ("pdf-only", {"format": "pdf"}), ("none", {"format": "zip"})]:
    channel.basic_publish(f"headers-{suffix}", "", name.encode(), pika.BasicProperties(headers=headers))
check(drain(both) == ["pdf-report"], "headers all")
check(drain(either) == ["pdf-only", "pdf-report"], "headers any")

# Exchange to exchange, and an alternate exchange for what matches nothing.
channel.exchange_declare(f"unrouted-{suffix}", "fanout", durable=True)
leftovers = queue("leftovers")
channel.queue_bind(leftovers, f"unrouted-{suffix}", "")
channel.exchange_declare(f"front-{suffix}", "direct", durable=True, arguments={"alternate-exchange": f"unrouted-{suffix}"})
channel.exchange_bind(f"topic-{suffix}", f"front-{suffix}", "order.placed")
channel.basic_publish(f"front-{suffix}", "order.placed", b"via-e2e")
channel.basic_publish(f"front-{suffix}", "nobody", b"via-ae")
check(drain(orders) == ["via-e2e"], "exchange-to-exchange binding")
check(drain(leftovers) == ["via-ae"], "alternate exchange")

# Mandatory and unroutable: returned to the publisher.
returned = []
channel.add_on_return_callback(lambda _channel, method, _properties, body: returned.append((method.reply_code, body)))
channel.basic_publish(f"direct-{suffix}", "nobody", b"lost", mandatory=True)
connection.process_data_events(time_limit=0)
for _ in range(50):
    if returned:
        break
    connection.process_data_events(time_limit=0.1)
check(returned == [(312, b"lost")], f"mandatory return: {returned}")

# A declare with another type is refused with 406 and closes the channel.
try:
    channel.exchange_declare(f"direct-{suffix}", "fanout", durable=True)
    check(False, "redeclaring an exchange with another type succeeded")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"inequivalent declare: {error}")
channel = connection.channel()

# AMQP to Kafka: an exchange bound to a Kafka topic.
kafka = sys.argv[1]
topic = f"amqp-to-kafka-{suffix}"
admin = KafkaAdminClient(bootstrap_servers=kafka)
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
admin.close()
channel.exchange_declare(f"events-{suffix}", "topic", durable=True)
channel.queue_bind(topic, f"events-{suffix}", "order.#")
channel.confirm_delivery()
channel.basic_publish(f"events-{suffix}", "order.placed", b'{"orderId":"ORD-9"}', pika.BasicProperties(content_type="application/json"))
consumer = KafkaConsumer(bootstrap_servers=kafka, auto_offset_reset="earliest")
consumer.assign([TopicPartition(topic, 0)])
records = []
for _ in range(60):
    for batch in consumer.poll(timeout_ms=500).values():
        records.extend((record.key, record.value) for record in batch)
    if records:
        break
consumer.close()
check(records == [(b"order.placed", b'{"orderId":"ORD-9"}')], f"Kafka consumer read {records}")

# The topic's max.message.bytes holds for records an exchange routes into it:
# the publish is nacked and nothing is written.
small = f"amqp-to-small-{suffix}"
admin = KafkaAdminClient(bootstrap_servers=kafka)
admin.create_topics([NewTopic(small, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "1024"})])
admin.close()
channel.queue_bind(small, f"events-{suffix}", "big.#")
try:
    channel.basic_publish(f"events-{suffix}", "big.one", b"x" * 4096)
    check(False, "a record over the topic's max.message.bytes routed into it was confirmed")
except pika.exceptions.NackError:
    pass
channel.basic_publish(f"events-{suffix}", "big.fits", b"small enough")
consumer = KafkaConsumer(bootstrap_servers=kafka, auto_offset_reset="earliest")
consumer.assign([TopicPartition(small, 0)])
records = []
for _ in range(60):
    for batch in consumer.poll(timeout_ms=500).values():
        records.extend(record.value for record in batch)
    if records:
        break
consumer.close()
check(records == [b"small enough"], f"only the record that fits was written: {records}")

connection.close()
print("ok")
