"""pika: stream queues (x-queue-type stream) as RabbitMQ documents them.
Consuming removes nothing: two consumers from `first` read the same
messages, each after the other acked; a consumer from a numeric offset gets
the tail, every delivery's x-stream-offset header its offset; `next` (the
default) gets only what is published after it starts; a timestamp and an
interval ("30m") start by time. Without basic.qos a consumer is refused
with 406; basic.get and queue.purge close the connection with 540
NOT_IMPLEMENTED, as RabbitMQ does; acks give prefetch credit back (a consumer
with prefetch 2 reads 10 messages by acking). Retention arguments are
accepted; a non-durable stream is refused with 406, and so is one with an
argument that would remove messages (x-message-ttl, x-max-length, …)."""
import datetime

import pika

from common import URL, check, pump_until, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

stream = unique("events")
channel.queue_declare(stream, durable=True, arguments={
    "x-queue-type": "stream",
    "x-max-length-bytes": 20_000_000_000,
    "x-max-age": "7D",
    "x-stream-max-segment-size-bytes": 100_000_000,
})
channel.confirm_delivery()
before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(seconds=1)
for index in range(10):
    channel.basic_publish("", stream, f"m{index}".encode())


def read(offset=None, count=10, prefetch=2, on=None):
    """Consumes `count` messages from `offset` on a fresh channel with
    prefetch `prefetch`, acking each; returns (body, x-stream-offset) pairs."""
    reading = (on or connection).channel()
    reading.basic_qos(prefetch_count=prefetch)
    got = []

    def on_message(ch, method, properties, body):
        got.append((body.decode(), properties.headers["x-stream-offset"]))
        ch.basic_ack(method.delivery_tag)

    arguments = {} if offset is None else {"x-stream-offset": offset}
    tag = reading.basic_consume(stream, on_message, arguments=arguments)
    pump_until(on or connection, lambda: len(got) >= count, f"{count} messages from {offset!r}")
    reading.basic_cancel(tag)
    reading.close()
    return got


everything = [(f"m{index}", index) for index in range(10)]
check(read("first") == everything, "the first reader from first")
check(read("first") == everything, "a second reader from first, after the first acked")
check(read(7, count=3) == everything[7:], "from offset 7")
check(read("last", count=1) == everything[9:], "from last")
check(read(before, count=10) == everything, "from a timestamp before the publishes")
check(read("30m", count=10) == everything, "from 30 minutes ago")

# `next` (and no argument): only what comes after the consumer started.
for offset in ("next", None):
    later = connection.channel()
    later.basic_qos(prefetch_count=5)
    got = []
    later.basic_consume(stream, lambda ch, m, p, body: (got.append(body), ch.basic_ack(m.delivery_tag)),
                        arguments={} if offset is None else {"x-stream-offset": offset})
    connection.process_data_events(time_limit=0.3)
    check(got == [], f"{offset!r}: old messages delivered: {got}")
    channel.basic_publish("", stream, f"after-{offset}".encode())
    pump_until(connection, lambda: got, f"the message published after a {offset!r} consumer started")
    check(got == [f"after-{offset}".encode()], f"{offset!r} got {got}")
    later.close()

# Nothing was removed by all that reading.
check(read("first", count=12)[:10] == everything, "the stream still holds everything")

# RabbitMQ's refusals.
probe = connection.channel()
try:
    probe.basic_consume(stream, lambda *_: None, arguments={"x-stream-offset": "first"})
    connection.process_data_events(time_limit=1)
    check(False, "a consumer without basic.qos was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"without qos: {error}")
    check("consumer prefetch count is not set" in error.reply_text, error.reply_text)
# 540 NOT_IMPLEMENTED is a connection exception: RabbitMQ closes the
# connection, not only the channel, for basic.get and queue.purge on a stream.
for action, text in ((lambda probe: probe.basic_get(stream), "basic.get not supported by stream queues"),
                     (lambda probe: probe.queue_purge(stream), "queue.purge not supported by stream queues")):
    refused = pika.BlockingConnection(pika.URLParameters(URL))
    try:
        action(refused.channel())
        check(False, f"accepted on a stream: {text}")
    except pika.exceptions.ConnectionClosedByBroker as error:
        check(error.reply_code == 540, f"{text}: {error}")
        check(f"{text} queue '{stream}' in vhost '/'" in error.reply_text, error.reply_text)
    check(refused.is_closed, f"the connection outlived {text}")
check(read("first", count=12)[:10] == everything, "the refused purge removed nothing")
probe = connection.channel()
try:
    probe.queue_declare(unique("transient-stream"), arguments={"x-queue-type": "stream"})
    check(False, "a non-durable stream was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406 and "invalid property 'non-durable'" in error.reply_text, f"non-durable: {error}")

probe = connection.channel()
try:
    probe.queue_declare(unique("ttl-stream"), durable=True, arguments={"x-queue-type": "stream", "x-message-ttl": 1000})
    check(False, "a stream with x-message-ttl was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406 and "invalid arg 'x-message-ttl'" in error.reply_text, f"x-message-ttl: {error}")

connection.close()
print("streams ok")
