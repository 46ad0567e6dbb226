"""pika: a consumer that holds a delivery past its queue's
x-consumer-timeout has its channel closed with 406 PRECONDITION_FAILED and
RabbitMQ's text, and the delivery goes to another consumer, flagged
redelivered. A consumer that acks in time keeps its channel. With the
argument `broker-wide` the queue has no x-consumer-timeout: the broker's
`consumer_timeout` setting (1000 ms for that run) applies."""
import sys
import time

import pika

from common import URL, check, pump_until, unique

TIMEOUT_MS = 1000

queue = unique("slow-consumers")
holder_connection = pika.BlockingConnection(pika.URLParameters(URL))
holder = holder_connection.channel()
broker_wide = sys.argv[1:] == ["broker-wide"]
holder.queue_declare(queue, arguments={} if broker_wide else {"x-consumer-timeout": TIMEOUT_MS})
holder.basic_qos(prefetch_count=1)
closed = []
# The blocking adapter keeps the close reason on the underlying channel.
holder._impl.add_on_close_callback(lambda channel, reason: closed.append(reason))
held = []
holder.basic_consume(queue, lambda ch, method, properties, body: held.append(body))
holder.basic_publish("", queue, b"slow")
pump_until(holder_connection, lambda: held, "the delivery to the consumer that will not ack")
started = time.monotonic()

taker_connection = pika.BlockingConnection(pika.URLParameters(URL))
taker = taker_connection.channel()
taker.basic_qos(prefetch_count=1)
taken = []


def take(ch, method, properties, body):
    taken.append((body, method.redelivered))
    ch.basic_ack(method.delivery_tag)


taker.basic_consume(queue, take)


def both():
    holder_connection.process_data_events(time_limit=0.02)
    taker_connection.process_data_events(time_limit=0.02)
    return closed and taken


pump_until(taker_connection, both, "the timed-out channel's close and the redelivery", seconds=15)
elapsed = time.monotonic() - started
check(elapsed >= TIMEOUT_MS / 1000 * 0.9, f"closed after {elapsed:.2f}s, before the timeout")
reason = closed[0]
check(isinstance(reason, pika.exceptions.ChannelClosedByBroker), f"closed by {reason!r}")
check(reason.reply_code == 406, f"reply code {reason.reply_code}")
expected = (f"PRECONDITION_FAILED - delivery acknowledgement on channel {holder.channel_number} timed out. "
            f"Timeout value used: {TIMEOUT_MS} ms. This timeout value can be configured, "
            "see consumers doc guide to learn more")
check(reason.reply_text == expected, f"reply text {reason.reply_text!r}")
check(taken == [(b"slow", True)], f"the other consumer got {taken}")
check(holder_connection.is_open, "the connection closed with the channel")

# A consumer that acks in time keeps its channel past the timeout.
taker.basic_publish("", queue, b"quick")
pump_until(taker_connection, lambda: len(taken) == 2, "the quick message")
deadline = time.monotonic() + TIMEOUT_MS / 1000 * 2
while time.monotonic() < deadline:
    taker_connection.process_data_events(time_limit=0.1)
check(taker.is_open, "a channel that acked in time was closed")

holder_connection.close()
taker_connection.close()
print("consumer timeout ok")
