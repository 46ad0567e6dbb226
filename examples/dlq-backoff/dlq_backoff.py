"""Retries with exponential backoff, then a dead-letter queue, with pika.

A consumer that fails a message does not retry in a hot loop: it parks the
message in a retry queue whose x-message-ttl is the backoff for that attempt
(200 ms, 400 ms, 800 ms); when the TTL expires the broker dead-letters it back
to the work queue. After the last retry the consumer rejects it and the work
queue's dead-letter exchange moves it to the DLQ, carrying its whole history
in the x-death header. A healthy message published at the same time is not
held up. Exits non-zero unless the delays grew, the message reached the DLQ
with its history, and the healthy one was processed at once."""
import os
import sys
import time
import uuid

import pika

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
BACKOFF_MS = [200, 400, 800]
DEADLINE_S = 30

prefix = f"orders-{uuid.uuid4().hex[:8]}"
WORK, DLQ = prefix, f"{prefix}.dlq"
RETRY = [f"{prefix}.retry.{n}" for n in range(1, len(BACKOFF_MS) + 1)]

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
channel.queue_declare(DLQ, durable=True)
channel.queue_declare(
    WORK, durable=True, arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": DLQ}
)
for queue, ttl_ms in zip(RETRY, BACKOFF_MS):
    channel.queue_declare(
        queue,
        durable=True,
        arguments={"x-message-ttl": ttl_ms, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": WORK},
    )
channel.confirm_delivery()


def retries_so_far(properties):
    """How many retry queues this message has already been through (x-death)."""
    deaths = (properties.headers or {}).get("x-death", [])
    return sum(death["count"] for death in deaths if death["queue"] in RETRY)


attempts = []  # (monotonic time, body) of every delivery to the consumer


def process_order(channel, method, properties, body):
    attempts.append((time.monotonic(), body))
    if body == b"order-ok":
        channel.basic_ack(method.delivery_tag)
        return
    retry = retries_so_far(properties)
    if retry < len(RETRY):
        print(f"{body.decode()}: attempt {retry + 1} failed, retrying in {BACKOFF_MS[retry]} ms")
        channel.basic_publish("", RETRY[retry], body, properties)  # parked for its backoff
        channel.basic_ack(method.delivery_tag)
    else:
        print(f"{body.decode()}: attempt {retry + 1} failed, giving up: to the dead-letter queue")
        channel.basic_reject(method.delivery_tag, requeue=False)


channel.basic_publish("", WORK, b"order-poison", pika.BasicProperties(delivery_mode=2, message_id="order-poison"))
channel.basic_publish("", WORK, b"order-ok", pika.BasicProperties(delivery_mode=2))
channel.basic_qos(prefetch_count=10)
channel.basic_consume(WORK, process_order)

deadline = time.monotonic() + DEADLINE_S
dead = None
while dead is None and time.monotonic() < deadline:
    connection.process_data_events(time_limit=0.05)
    method, properties, body = channel.basic_get(DLQ, auto_ack=True)
    if method:
        dead = (properties, body)

failures = []
poison = [at for at, body in attempts if body == b"order-poison"]
gaps_ms = [round((later - earlier) * 1000) for earlier, later in zip(poison, poison[1:])]
print(f"delays between attempts: {gaps_ms} ms")
if len(poison) != len(BACKOFF_MS) + 1:
    failures.append(f"the poison message was tried {len(poison)} times, expected {len(BACKOFF_MS) + 1}")
for gap_ms, backoff_ms in zip(gaps_ms, BACKOFF_MS):
    if gap_ms < backoff_ms:
        failures.append(f"retried after {gap_ms} ms, before its {backoff_ms} ms backoff")
if gaps_ms != sorted(gaps_ms):
    failures.append(f"the delays did not grow: {gaps_ms}")
ok_at = [at for at, body in attempts if body == b"order-ok"]
if len(ok_at) != 1 or ok_at[0] > poison[-1]:
    failures.append("the healthy order waited behind the failing one")
if dead is None:
    failures.append("nothing reached the dead-letter queue")
else:
    properties, body = dead
    history = [(d["queue"], d["reason"], d["count"]) for d in properties.headers.get("x-death", [])]
    print(f"in the DLQ: {body.decode()} (message_id {properties.message_id}), x-death history:")
    for queue, reason, count in history:
        print(f"  {queue}: {reason} x{count}")
    expected = {(WORK, "rejected", 1)} | {(queue, "expired", 1) for queue in RETRY}
    if body != b"order-poison" or set(history) != expected:
        failures.append(f"the DLQ holds {body!r} with history {history}, expected {sorted(expected)}")
for queue in [WORK, DLQ, *RETRY]:
    channel.queue_delete(queue)
connection.close()
if failures:
    sys.exit("FAILED: " + "; ".join(failures))
print("ok: backoff grew, the healthy order went through at once, the poison one is in the DLQ with its history")
