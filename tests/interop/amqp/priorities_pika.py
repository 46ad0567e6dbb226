"""pika: consumer priorities (x-priority on basic.consume), as RabbitMQ has
them — while a consumer of higher priority has room in its prefetch window
it gets every message; a consumer of lower priority gets messages only while
every higher one is full or gone; a cancelled consumer's unacked deliveries
stay with its channel; an x-priority that is not an integer is refused with
406."""

import pika

from common import URL, check, pump_until, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
publisher = connection.channel()
publisher.confirm_delivery()
queue = unique("priorities")
publisher.queue_declare(queue, durable=True)

got = {"high": [], "low": []}


def collect(name):
    def on_message(_channel, method, _properties, body):
        got[name].append((method.delivery_tag, body))

    return on_message


high = connection.channel()
high.basic_qos(prefetch_count=2)
high_tag = high.basic_consume(queue, collect("high"), arguments={"x-priority": 10})
low = connection.channel()
low.basic_qos(prefetch_count=100)
low.basic_consume(queue, collect("low"))


def publish(*bodies):
    for body in bodies:
        publisher.basic_publish("", queue, body)


def wait_for(total):
    pump_until(connection, lambda: len(got["high"]) + len(got["low"]) >= total, f"{total} deliveries")


def bodies(name):
    return [body for _tag, body in got[name]]


# The high-priority consumer takes what its prefetch allows; the rest goes low.
publish(b"m0", b"m1", b"m2", b"m3", b"m4", b"m5")
wait_for(6)
check(bodies("high") == [b"m0", b"m1"], f"high-priority consumer: {got}")
check(bodies("low") == [b"m2", b"m3", b"m4", b"m5"], f"low-priority consumer: {got}")

# Room again (acks): new messages go to the high-priority consumer first.
for tag, _body in got["high"]:
    high.basic_ack(tag)
# Acks and publishes travel on different channels, so nothing orders them:
# a synchronous round trip on the acking channel makes the room real first.
high.queue_declare(queue, passive=True)
publish(b"m6", b"m7")
wait_for(8)
check(bodies("high")[2:] == [b"m6", b"m7"], f"after acks, high again: {got}")
check(len(got["low"]) == 4, f"low got nothing while high had room: {got}")

# Gone: the low-priority consumer gets everything. What the cancelled
# consumer was sent stays unacked on its channel, which still acks it
# (RabbitMQ's behaviour): it is not delivered again.
high.basic_cancel(high_tag)
for tag, _body in got["high"][2:]:
    high.basic_ack(tag)
publish(b"m8")
wait_for(9)
check(bodies("low") == [b"m2", b"m3", b"m4", b"m5", b"m8"], f"after cancel, low: {got}")
check(high.queue_declare(queue, passive=True).method.message_count == 0, "acks after the cancel took effect")

try:
    low.basic_consume(queue, collect("low"), arguments={"x-priority": "ten"})
    check(False, "a text x-priority was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"invalid x-priority: {error}")

connection.close()
print("ok")
