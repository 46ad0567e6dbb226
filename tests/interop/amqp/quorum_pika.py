"""pika: a quorum queue (x-queue-type quorum) as RabbitMQ 4 has it. Without
x-delivery-limit a message may be returned 20 times: a consumer that nacks
with requeue sees it 21 times, each redelivery carrying x-delivery-count
(1, 2, … 20), and after the 21st nack it is dead-lettered with reason
delivery_limit. An explicit x-delivery-limit counts the same way; the
x-dead-letter-strategy and x-quorum-initial-group-size arguments are
accepted. Non-durable, exclusive and auto-delete declarations are refused
with 406 and RabbitMQ's text."""
import pika

from common import URL, check, pump_until, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

dlx = unique("quorum-dlx")
dead = unique("quorum-dead")
channel.exchange_declare(dlx, "fanout")
channel.queue_declare(dead, durable=True)
channel.queue_bind(dead, dlx)


def nack_until_dead(queue, expected_deliveries):
    """Nacks every delivery with requeue; returns the x-delivery-count
    headers seen, once the message reached the dead-letter queue."""
    seen = []

    def on_message(ch, method, properties, body):
        seen.append((properties.headers or {}).get("x-delivery-count"))
        ch.basic_nack(method.delivery_tag, requeue=True)

    channel.basic_qos(prefetch_count=1)
    tag = channel.basic_consume(queue, on_message)
    pump_until(connection, lambda: channel.queue_declare(dead, passive=True).method.message_count == 1,
               f"the message of {queue} dead-lettered", seconds=20)
    channel.basic_cancel(tag)
    check(len(seen) == expected_deliveries, f"{queue}: {len(seen)} deliveries, expected {expected_deliveries}")
    method, properties, body = channel.basic_get(dead, auto_ack=True)
    check(body == b"poison", f"dead letter body {body!r}")
    death = properties.headers["x-death"][0]
    check(death["reason"] == "delivery_limit", f"x-death {death}")
    check(death["queue"] == queue, f"x-death {death}")
    check(properties.headers["x-first-death-reason"] == "delivery_limit", f"headers {properties.headers}")
    return seen


# The default limit: 20 returns.
queue = unique("quorum-default")
channel.queue_declare(queue, durable=True, arguments={
    "x-queue-type": "quorum",
    "x-dead-letter-exchange": dlx,
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
    "x-quorum-initial-group-size": 3,
})
channel.basic_publish("", queue, b"poison")
seen = nack_until_dead(queue, 21)
check(seen == [None] + list(range(1, 21)), f"x-delivery-count headers {seen}")
check(channel.queue_declare(queue, passive=True).method.message_count == 0, "the queue kept the message")

# An explicit limit of 2 returns.
queue = unique("quorum-limit")
channel.queue_declare(queue, durable=True, arguments={
    "x-queue-type": "quorum", "x-dead-letter-exchange": dlx, "x-delivery-limit": 2,
})
channel.basic_publish("", queue, b"poison")
seen = nack_until_dead(queue, 3)
check(seen == [None, 1, 2], f"x-delivery-count headers {seen}")

# A classic queue's redeliveries carry no x-delivery-count.
classic = unique("classic")
channel.queue_declare(classic)
channel.basic_publish("", classic, b"again")
method, properties, _ = channel.basic_get(classic)
channel.basic_nack(method.delivery_tag, requeue=True)
method, properties, _ = channel.basic_get(classic, auto_ack=True)
check(method.redelivered and "x-delivery-count" not in (properties.headers or {}), f"classic headers {properties.headers}")

# What quorum queues refuse, in RabbitMQ's words.
for flags, refused in (
    ({"durable": False}, "non-durable"),
    ({"durable": True, "exclusive": True}, "exclusive-owner"),
    ({"durable": True, "auto_delete": True}, "auto-delete"),
):
    name = unique("quorum-refused")
    probe = connection.channel()
    try:
        probe.queue_declare(name, arguments={"x-queue-type": "quorum"}, **flags)
        check(False, f"{flags} was accepted")
    except pika.exceptions.ChannelClosedByBroker as error:
        check(error.reply_code == 406, f"{flags}: {error}")
        expected = f"PRECONDITION_FAILED - invalid property '{refused}' for queue '{name}' in vhost '/'"
        check(error.reply_text == expected, f"{flags}: {error.reply_text!r}, expected {expected!r}")

probe = connection.channel()
try:
    probe.queue_declare(unique("quorum-strategy"), durable=True,
                        arguments={"x-queue-type": "quorum", "x-dead-letter-strategy": "sometimes"})
    check(False, "a bad x-dead-letter-strategy was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"bad strategy: {error}")

connection.close()
print("quorum ok")
