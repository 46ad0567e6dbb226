"""The FIFO rule is the core queue's, so AMQP gets it too: a FIFO queue
created over SQS, read with pika's basic.get, hands out a group's next
message only once its head is acked, while another group goes on; and a
FIFO queue declared over AMQP (x-message-groups) groups by routing key."""
import pika

from common import AMQP_URL, check, client, unique

sqs = client()
name = unique("bridge") + ".fifo"
url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
for body, group in [("a1", "A"), ("a2", "A"), ("b1", "B")]:
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()


def get(queue):
    method, _, body = channel.basic_get(queue, auto_ack=False)
    return (method, body) if method else (None, None)


head, body = get(name)
check(body == b"a1", f"first get {body!r}")
other, body = get(name)
check(body == b"b1", f"A's head is unacked: B's comes instead, got {body!r}")
nothing, body = get(name)
check(nothing is None, f"both groups have a message unacked, got {body!r}")
channel.basic_ack(head.delivery_tag)
_, body = get(name)
check(body == b"a2", f"A's next after its head was acked, got {body!r}")

# Declared over AMQP: through the default exchange the routing key (the
# queue's name) is every message's group, so they come in order, one at a time.
amqp_name = unique("amqp-groups")
channel.queue_declare(queue=amqp_name, durable=True, arguments={"x-message-groups": "true"})
channel.confirm_delivery()
for index in range(3):
    channel.basic_publish(exchange="", routing_key=amqp_name, body=f"m{index}".encode())
first, body = get(amqp_name)
check(body == b"m0", f"{body!r}")
blocked, body = get(amqp_name)
check(blocked is None, f"one group, its head unacked: nothing, got {body!r}")
channel.basic_ack(first.delivery_tag)
_, body = get(amqp_name)
check(body == b"m1", f"{body!r}")
connection.close()
print("fifo over amqp: ok")
