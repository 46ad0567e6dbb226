"""pika: RabbitMQ's RPC tutorial with Direct Reply-to. The client consumes
amq.rabbitmq.reply-to in no-ack mode and publishes requests with
reply_to=amq.rabbitmq.reply-to; the server (another connection) sees a
reply_to of amq.rabbitmq.reply-to.<token> and publishes its answer to the
default exchange with that routing key, which reaches the client without a
queue. Then RabbitMQ's errors on misuse: consuming with acks (406 "reply
consumer cannot acknowledge"), publishing with that reply_to without
consuming first (406 "fast reply consumer does not exist"); a reply to a
channel that is gone is dropped, or returned when mandatory; a passive
declare of the pseudo-queue succeeds."""
import uuid

import pika
import pika.exceptions

from common import URL, check, unique

PSEUDO_QUEUE = "amq.rabbitmq.reply-to"
DEADLINE_S = 10


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


server_connection = pika.BlockingConnection(pika.URLParameters(URL))
server = server_connection.channel()
rpc_queue = unique("rpc_queue")
server.queue_declare(rpc_queue)
seen_reply_to = []


def on_request(ch, method, props, body):
    seen_reply_to.append(props.reply_to)
    ch.basic_publish(
        exchange="",
        routing_key=props.reply_to,
        properties=pika.BasicProperties(correlation_id=props.correlation_id),
        body=str(fib(int(body))),
    )
    ch.basic_ack(delivery_tag=method.delivery_tag)


server.basic_qos(prefetch_count=1)
server.basic_consume(queue=rpc_queue, on_message_callback=on_request)

client_connection = pika.BlockingConnection(pika.URLParameters(URL))
client = client_connection.channel()
# FastStream checks that the pseudo-queue exists before consuming it.
declared = client.queue_declare(PSEUDO_QUEUE, passive=True)
check(declared.method.queue == PSEUDO_QUEUE, f"passive declare: {declared.method}")
responses = {}


def on_response(ch, method, props, body):
    check(method.routing_key.startswith(PSEUDO_QUEUE + "."), f"reply delivered with routing key {method.routing_key}")
    responses[props.correlation_id] = int(body)


client.basic_consume(queue=PSEUDO_QUEUE, on_message_callback=on_response, auto_ack=True)


def pump_both(condition, what):
    import time

    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        check(time.monotonic() < deadline, f"timed out waiting for {what}")
        server_connection.process_data_events(time_limit=0.02)
        client_connection.process_data_events(time_limit=0.02)


def call(n):
    correlation_id = str(uuid.uuid4())
    client.basic_publish(
        exchange="",
        routing_key=rpc_queue,
        properties=pika.BasicProperties(reply_to=PSEUDO_QUEUE, correlation_id=correlation_id),
        body=str(n),
    )
    pump_both(lambda: correlation_id in responses, f"the reply to fib({n})")
    return responses[correlation_id]


for n in (1, 10, 30):
    check(call(n) == fib(n), f"fib({n}) = {responses}")
check(len(set(seen_reply_to)) == 1, f"one token per channel: {seen_reply_to}")
token_reply_to = seen_reply_to[0]
check(
    token_reply_to.startswith(PSEUDO_QUEUE + ".") and len(token_reply_to) > len(PSEUDO_QUEUE) + 1,
    f"reply_to was not rewritten to a token: {token_reply_to}",
)
print("rpc over direct reply-to ok")

# Consuming the pseudo-queue with acks is refused.
acking = client_connection.channel()
try:
    acking.basic_consume(queue=PSEUDO_QUEUE, on_message_callback=lambda *_: None, auto_ack=False)
    check(False, "a reply consumer with acks was accepted")
except pika.exceptions.ChannelClosedByBroker as closed:
    check(closed.reply_code == 406, f"consume with acks: {closed.reply_code} {closed.reply_text}")
    check("reply consumer cannot acknowledge" in closed.reply_text, closed.reply_text)

# Publishing with that reply_to on a channel that consumes no replies is refused.
unready = client_connection.channel()
unready.basic_publish("", rpc_queue, b"1", pika.BasicProperties(reply_to=PSEUDO_QUEUE))
try:
    # The next round trip finds the channel closed.
    unready.queue_declare(rpc_queue, passive=True)
    check(False, "a publish with reply_to amq.rabbitmq.reply-to and no reply consumer was accepted")
except pika.exceptions.ChannelClosedByBroker as closed:
    check(closed.reply_code == 406, f"publish without a reply consumer: {closed.reply_code} {closed.reply_text}")
    check("fast reply consumer does not exist" in closed.reply_text, closed.reply_text)

# A reply to a channel that is gone: dropped, or returned when mandatory.
client.close()
replier = server_connection.channel()
replier.confirm_delivery()
replier.basic_publish("", token_reply_to, b"late")  # dropped, no error
try:
    replier.basic_publish("", token_reply_to, b"late", mandatory=True)
    check(False, "a mandatory reply to a closed channel was not returned")
except pika.exceptions.UnroutableError:
    pass
check(replier.is_open, "the replier's channel closed")

client_connection.close()
server_connection.close()
print("direct reply-to misuse ok")
