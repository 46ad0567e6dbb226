"""A durable queue across a broker crash, in two runs of this script around a
SIGKILL: `publish QUEUE` confirms 200 persistent messages, acks the first 50
and holds 10 more unacked; `verify QUEUE` (after the restart) must receive
exactly the 150 confirmed, unacknowledged messages, the 10 that were in
flight flagged redelivered, and none of the acked ones."""
import sys

import pika

from common import URL, check

mode, queue = sys.argv[1], sys.argv[2]
connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()

if mode == "publish":
    channel.queue_declare(queue, durable=True)
    channel.confirm_delivery()
    for index in range(200):
        channel.basic_publish("", queue, f"m-{index}".encode(), pika.BasicProperties(delivery_mode=2))
    for index in range(60):
        method, _properties, body = channel.basic_get(queue)
        check(body == f"m-{index}".encode(), f"delivery {index}: {body}")
        if index < 50:
            channel.basic_ack(method.delivery_tag)
    # A round trip after the acks: the broker answers once they are durable.
    count = channel.queue_declare(queue, passive=True).method.message_count
    check(count == 140, f"{count} available after 50 acks and 10 held")
    print("ok")
    sys.stdout.flush()
    # Left open on purpose: the broker is killed next.
    sys.exit(0)

check(mode == "verify", f"unknown mode {mode}")
received = []
redelivered = set()
for _ in range(1000):
    method, _properties, body = channel.basic_get(queue, auto_ack=True)
    if method is None:
        break
    received.append(body.decode())
    if method.redelivered:
        redelivered.add(body.decode())
expected = [f"m-{index}" for index in range(50, 200)]
check(received == expected, f"after the crash: {len(received)} messages, first {received[:3]}, expected m-50..m-199 in order")
check(redelivered == {f"m-{index}" for index in range(50, 60)}, f"redelivered: {sorted(redelivered)}")
connection.close()
print("ok")
