"""pika: retries with exponential backoff, then the dead-letter queue — the
seeds' retry pattern done by the broker. A queue declared with
x-retry-delay-ms redelivers a nacked (requeued) message only after a delay
that doubles each time; meanwhile later messages are delivered; past
x-delivery-limit the message goes to the dead-letter exchange."""
import time

import pika

from common import URL, check, dead_letters, unique

DELAY_MS = 150
LIMIT = 3
DEADLINE_S = 30

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
suffix = unique("retry")
dlx, dead = dead_letters(channel, suffix)
work = f"work-{suffix}"
channel.queue_declare(
    work,
    durable=True,
    arguments={
        "x-retry-delay-ms": DELAY_MS,
        "x-retry-backoff": 2,
        "x-delivery-limit": LIMIT,
        "x-dead-letter-exchange": dlx,
    },
)
channel.basic_publish("", work, b"flaky-job")
channel.basic_publish("", work, b"good-job")

# (body, redelivered, monotonic time) of each delivery.
deliveries = []


def on_message(channel, method, _properties, body):
    deliveries.append((body, method.redelivered, time.monotonic()))
    if body == b"flaky-job":
        channel.basic_nack(method.delivery_tag, requeue=True)
    else:
        channel.basic_ack(method.delivery_tag)


channel.basic_qos(prefetch_count=10)
channel.basic_consume(work, on_message)
deadline = time.monotonic() + DEADLINE_S
while sum(1 for body, _, _ in deliveries if body == b"flaky-job") < LIMIT and time.monotonic() < deadline:
    connection.process_data_events(time_limit=0.1)

flaky = [(redelivered, at) for body, redelivered, at in deliveries if body == b"flaky-job"]
check(len(flaky) == LIMIT, f"the flaky job was delivered {len(flaky)} times, not {LIMIT}: {deliveries}")
check([redelivered for redelivered, _ in flaky] == [False, True, True], f"redelivered flags {flaky}")
gaps_ms = [(later - earlier) * 1000 for (_, earlier), (_, later) in zip(flaky, flaky[1:])]
for retry, gap_ms in enumerate(gaps_ms):
    wanted_ms = DELAY_MS * 2**retry
    # Measured from after the nack left the client, so never shorter, but
    # for the broker clock's millisecond granularity.
    check(gap_ms >= wanted_ms - 1, f"retry {retry + 1} came after {gap_ms:.0f} ms, before its {wanted_ms} ms backoff")
order = [body for body, _, _ in deliveries]
check(order.index(b"good-job") < 2, f"the good job waited behind the delayed retry: {order}")

# The third refusal exhausted the limit: the next attempt dead-letters it.
while time.monotonic() < deadline:
    method, properties, body = channel.basic_get(dead, auto_ack=True)
    if method is not None:
        break
    connection.process_data_events(time_limit=0.1)
check(method is not None, "the exhausted job never reached the dead-letter queue")
death = properties.headers["x-death"][0]
check(body == b"flaky-job" and death["reason"] == "delivery_limit", f"dead letter {body} {death}")
check(len([body for body, _, _ in deliveries if body == b"flaky-job"]) == LIMIT, "delivered again past the limit")
connection.close()
print("retry backoff ok")
