"""The kafka-python snippet from the seeds (04-why-message-queues-matter.md),
unmodified except for the broker address and indentation. The harness
defines `send_order_confirmation_email` (the snippet leaves it to the reader),
publishes orders with the snippet's `publish_order_event`, and stops the
snippet's endless consumer loop once every order was processed."""
import os

BROKER = os.environ["CONVEYOR_KAFKA"]
processed = []
ORDERS = [{"id": f"ORD-{n}", "user_id": n % 3, "total": 10.0 * n, "items": [{"sku": f"S{n}", "qty": 1}]} for n in range(5)]


class Done(Exception):
    """Raised by the harness's email stub once every order is processed."""


def send_order_confirmation_email(event):
    processed.append(event)
    if len(processed) == len(ORDERS):
        raise Done


# ---- the seed snippet ----
from kafka import KafkaProducer, KafkaConsumer
import json
# ─── Producer: Send order events ───
producer = KafkaProducer(
    bootstrap_servers=[BROKER],
    value_serializer=lambda v: json.dumps(v).encode('utf-8'),
    key_serializer=lambda k: k.encode('utf-8'),
    acks='all', # Wait for all replicas
    retries=3, # Retry on transient failures
    linger_ms=10, # Batch messages for efficiency
)
def publish_order_event(order):
    """Publish an order event, keyed by user_id for partition ordering."""
    future = producer.send(
        topic='order-events',
        key=str(order['user_id']),
        value={
            'event_type': 'order_placed',
            'order_id': order['id'],
            'user_id': order['user_id'],
            'total': order['total'],
            'items': order['items'],
        }
    )
    # Block until sent (or timeout)
    record_metadata = future.get(timeout=10)
    print(f"Sent to partition {record_metadata.partition} offset {record_metadata.offset}")
# ---- harness: publish the orders with the snippet's function ----
for order in ORDERS:
    publish_order_event(order)
# ---- the seed snippet, continued ----
# ─── Consumer: Process order events ───
consumer = KafkaConsumer(
    'order-events',
    bootstrap_servers=[BROKER],
    group_id='email-notifications',
    value_deserializer=lambda m: json.loads(m.decode('utf-8')),
    auto_offset_reset='earliest', # Start from beginning if no offset
    enable_auto_commit=False, # Manual commit for reliability
)
try:
    for message in consumer:
        event = message.value
        print(f"Processing: {event['event_type']} for order {event['order_id']}")
        # Process the event (send email, etc.)
        send_order_confirmation_email(event)
        # Commit offset after successful processing
        consumer.commit()
except Done:
    consumer.commit()
# ---- harness checks ----
assert [event["order_id"] for event in sorted(processed, key=lambda e: e["order_id"])] == [o["id"] for o in ORDERS], processed
assert producer.config["enable_idempotence"], "kafka-python 3.x defaults to the idempotent producer"
committed = sum(consumer.committed(tp) or 0 for tp in consumer.assignment())
assert committed == len(ORDERS), f"committed {committed}"
consumer.close()
producer.close()
print("ok")
