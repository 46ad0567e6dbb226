"""Shared helpers for the AMQP interop scripts: the broker URL,
assertions that exit non-zero with a readable message, waiting on a
pika connection for a condition, and reading a stream."""
import os
import sys
import time

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, round_trip, unique  # noqa: E402,F401  (re-exported)


def dead_letters(channel, suffix):
    """Declares a durable fanout dead-letter exchange `dlx-{suffix}` and
    the queue `dead-{suffix}` bound to it; returns both names."""
    dlx = f"dlx-{suffix}"
    channel.exchange_declare(dlx, "fanout", durable=True)
    dead = f"dead-{suffix}"
    channel.queue_declare(dead, durable=True)
    channel.queue_bind(dead, dlx, "")
    return dlx, dead


def pump_until(connection, condition, what, seconds=10):
    """Runs a pika BlockingConnection's I/O until condition() holds; fails
    with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            check(False, f"timed out waiting for {what}")
        connection.process_data_events(time_limit=0.05)


def read_stream(connection, stream, start="first", prefetch=10):
    """Declares `stream` as a stream queue (over the Kafka topic of that
    name, if there is one) and consumes it from `start` with manual acks on
    a channel of pika `connection`; returns the channel and the list every
    delivery is appended to as (x-stream-offset, body) while the
    connection's I/O runs."""
    channel = connection.channel()
    channel.queue_declare(stream, durable=True, arguments={"x-queue-type": "stream"})
    channel.basic_qos(prefetch_count=prefetch)
    deliveries = []

    def on_message(ch, method, properties, body):
        deliveries.append((properties.headers["x-stream-offset"], body))
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(stream, on_message, arguments={"x-stream-offset": start})
    return channel, deliveries
