"""pika: message priorities (x-max-priority), as a RabbitMQ priority queue has
them. `behaviour`: among the messages ready when a consumer or basic.get
takes one, higher priorities go first and FIFO within a priority (a priority
above the maximum counts as the maximum; none is 0); a message given back by
nack, reject or a channel close keeps its priority; a full drop-head queue
drops the head of the highest priority; a queue without
x-max-priority ignores priorities; a bad x-max-priority, or a redeclaration
with another one, is refused with 406. `publish QUEUE` / `verify QUEUE`
around a broker kill: the order, and a held message's place, survive it."""
import sys
import time

import pika

from common import URL, check, unique

MAX_PRIORITY = 10


def connect():
    return pika.BlockingConnection(pika.URLParameters(URL))


def declare(channel, queue, max_priority=MAX_PRIORITY):
    channel.queue_declare(queue, durable=True, arguments={"x-max-priority": max_priority})


def publish(channel, queue, messages):
    """`messages`: (body, priority or None) pairs, confirmed and persistent."""
    for body, priority in messages:
        properties = pika.BasicProperties(delivery_mode=2, priority=priority)
        channel.basic_publish("", queue, body.encode(), properties)


def get_all(channel, queue, limit=100):
    """Everything basic.get hands out, auto-acked: (body, redelivered) pairs."""
    got = []
    for _ in range(limit):
        method, _properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        got.append((body.decode(), method.redelivered))
    return got


# Mixed priorities; the expected order is by priority, then publication.
MIXED = [("p-none", None), ("p1", 1), ("p5-a", 5), ("p10-a", 10), ("p5-b", 5), ("p200", 200), ("p0", 0), ("p3", 3)]
MIXED_ORDER = ["p10-a", "p200", "p5-a", "p5-b", "p3", "p1", "p-none", "p0"]


def refused(declare_it):
    """Runs a queue.declare on a fresh channel; returns the 406 it must get."""
    connection = connect()
    channel = connection.channel()
    try:
        declare_it(channel)
    except pika.exceptions.ChannelClosedByBroker as error:
        connection.close()
        return error
    check(False, "the declaration was accepted")


def behaviour():
    connection = connect()
    channel = connection.channel()
    channel.confirm_delivery()

    # basic.get takes the highest priority first, FIFO within one.
    queue = unique("prio-get")
    declare(channel, queue)
    publish(channel, queue, MIXED)
    got = [body for body, _ in get_all(channel, queue)]
    check(got == MIXED_ORDER, f"basic.get order: {got}")

    # So does a consumer that arrives once they are all there.
    queue = unique("prio-consume")
    declare(channel, queue)
    publish(channel, queue, MIXED)
    consumer = connection.channel()
    consumer.basic_qos(prefetch_count=100)
    consumed = []
    consumer.basic_consume(queue, lambda ch, method, _p, body: consumed.append(body.decode()), auto_ack=True)
    deadline = time.monotonic() + 10
    while len(consumed) < len(MIXED) and time.monotonic() < deadline:
        connection.process_data_events(time_limit=0.05)
    check(consumed == MIXED_ORDER, f"consumed order: {consumed}")
    consumer.close()

    # Given back by nack, reject or a channel close, a message keeps its
    # priority: it goes before lower ones published since.
    queue = unique("prio-requeue")
    declare(channel, queue)
    publish(channel, queue, [("low", 1), ("high", 9)])
    method, _properties, body = channel.basic_get(queue)
    check(body == b"high", f"first get: {body}")
    publish(channel, queue, [("mid", 5)])
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _properties, body = channel.basic_get(queue)
    check(body == b"high" and method.redelivered, f"after a nack with requeue: {body} redelivered={method.redelivered}")
    channel.basic_reject(method.delivery_tag, requeue=True)
    holder = connection.channel()
    method, _properties, body = holder.basic_get(queue)
    check(body == b"high", f"after a reject with requeue: {body}")
    holder.close()
    got = get_all(channel, queue)
    check(got == [("high", True), ("mid", False), ("low", False)], f"after a channel close: {got}")

    # A full drop-head queue drops what would be delivered next, the head
    # of the highest priority, as RabbitMQ's priority queues do.
    queue = unique("prio-full")
    channel.queue_declare(queue, durable=True, arguments={"x-max-priority": MAX_PRIORITY, "x-max-length": 2})
    publish(channel, queue, [("a", 1), ("b", 5), ("c", 1)])
    got = [body for body, _ in get_all(channel, queue)]
    check(got == ["a", "c"], f"left in a full queue: {got}")

    # Without x-max-priority, priorities change nothing.
    queue = unique("prio-none")
    channel.queue_declare(queue, durable=True)
    publish(channel, queue, MIXED)
    got = [body for body, _ in get_all(channel, queue)]
    check(got == [body for body, _ in MIXED], f"a queue without priorities: {got}")

    # A redeclaration must name the same maximum.
    queue = unique("prio-redeclare")
    declare(channel, queue)
    declare(channel, queue)
    connection.close()
    error = refused(lambda other: declare(other, queue, 5))
    check(error.reply_code == 406, f"redeclared with another x-max-priority: {error}")

    # RabbitMQ's rule: an integer from 0 to 255.
    for bad in [256, -1, "10"]:
        error = refused(lambda other: declare(other, unique("prio-bad"), bad))
        check(error.reply_code == 406, f"x-max-priority {bad!r}: {error}")
        check("x-max-priority" in error.reply_text, f"x-max-priority {bad!r}: {error.reply_text}")
    connection = connect()
    declare(connection.channel(), unique("prio-255"), 255)
    connection.close()
    print("ok")


def before_restart(queue):
    connection = connect()
    channel = connection.channel()
    channel.confirm_delivery()
    declare(channel, queue)
    publish(channel, queue, MIXED)
    # Held unacked when the broker dies: available again after, in its place.
    method, _properties, body = channel.basic_get(queue)
    check(body == b"p10-a", f"first get: {body}")
    # A round trip after the get: its delivery is journaled by the time the broker answers.
    channel.queue_declare(queue, passive=True)
    print("ok")
    sys.stdout.flush()
    # Left open on purpose: the broker is killed next.
    sys.exit(0)


def after_restart(queue):
    connection = connect()
    channel = connection.channel()
    got = get_all(channel, queue)
    expected = [(body, body == "p10-a") for body in MIXED_ORDER]
    check(got == expected, f"after the restart: {got}")
    connection.close()
    print("ok")


mode = sys.argv[1]
if mode == "behaviour":
    behaviour()
elif mode == "publish":
    before_restart(sys.argv[2])
elif mode == "verify":
    after_restart(sys.argv[2])
else:
    check(False, f"unknown mode {mode}")
