"""pika against a durable work queue: publisher confirms; prefetch bounds
what a consumer holds; two consumers share the queue with nothing lost or
duplicated; nack with requeue redelivers with the redelivered flag, reject
without requeue drops; unacked messages come back after the channel closes;
basic.get; queue.purge; exclusive consumers and auto-delete queues; a passive declare of a missing queue is a 404
channel close."""
import pika

from common import URL, check, unique

parameters = pika.URLParameters(URL)
connection = pika.BlockingConnection(parameters)
channel = connection.channel()
queue = unique("work")
channel.queue_declare(queue, durable=True)
channel.confirm_delivery()
for index in range(20):
    # With confirms on, basic_publish returns once the broker confirmed (durable).
    channel.basic_publish("", queue, f"job-{index}".encode(), pika.BasicProperties(delivery_mode=2))
check(channel.queue_declare(queue, passive=True).method.message_count == 20, "message count after 20 confirmed publishes")

# Prefetch 5: a consumer that does not ack holds exactly 5.
holder = connection.channel()
holder.basic_qos(prefetch_count=5)
held = []
for method, properties, body in holder.consume(queue, inactivity_timeout=30):
    check(method is not None, f"only {len(held)} deliveries within 30 s")
    held.append((method.delivery_tag, body))
    if len(held) == 5:
        break
# The broker acquired no more than the window: 15 are still available.
check(channel.queue_declare(queue, passive=True).method.message_count == 15, "available while 5 are held")

# Closing the holder's channel gives its 5 back, marked redelivered.
holder.close()
check(channel.queue_declare(queue, passive=True).method.message_count == 20, "all back after the holder's channel closed")

# Two competing consumers on their own connections take everything once.
seen = {}
redelivered = 0
second_connection = pika.BlockingConnection(parameters)
consumers = [connection.channel(), second_connection.channel()]
for consumer in consumers:
    consumer.basic_qos(prefetch_count=3)
rounds = 0
while sum(len(bodies) for bodies in seen.values()) < 20 and rounds < 200:
    rounds += 1
    for number, consumer in enumerate(consumers):
        method, _properties, body = consumer.basic_get(queue)
        if method is None:
            continue
        seen.setdefault(number, []).append(body)
        redelivered += 1 if method.redelivered else 0
        consumer.basic_ack(method.delivery_tag)
bodies = sorted(body for share in seen.values() for body in share)
check(bodies == sorted(f"job-{index}".encode() for index in range(20)), f"competing consumers got {bodies}")
check(redelivered == 5, f"{redelivered} deliveries flagged redelivered, expected the 5 released ones")
check(channel.queue_declare(queue, passive=True).method.message_count == 0, "queue empty after every ack")
second_connection.close()

# nack with requeue: delivered again, flagged; reject without requeue: gone.
channel.basic_publish("", queue, b"retry-me")
method, _properties, body = channel.basic_get(queue)
check(body == b"retry-me" and not method.redelivered, "first delivery")
channel.basic_nack(method.delivery_tag, requeue=True)
method, _properties, body = channel.basic_get(queue)
check(body == b"retry-me" and method.redelivered, "a nacked message comes back flagged redelivered")
channel.basic_reject(method.delivery_tag, requeue=False)
method, _properties, _body = channel.basic_get(queue)
check(method is None, "a rejected message was delivered again")

# Properties and headers survive the trip.
properties = pika.BasicProperties(content_type="application/json", headers={"attempt": 3, "source": "pika"},
                                  correlation_id="abc", delivery_mode=2)
channel.basic_publish("", queue, b"{}", properties)
method, got, body = channel.basic_get(queue, auto_ack=True)
check(got.content_type == "application/json" and got.headers == {"attempt": 3, "source": "pika"}
      and got.correlation_id == "abc" and got.delivery_mode == 2, f"properties: {got}")

# queue.purge settles what is available and says how many.
for index in range(3):
    channel.basic_publish("", queue, f"purge-{index}".encode())
check(channel.queue_purge(queue).method.message_count == 3, "purge count")
check(channel.queue_declare(queue, passive=True).method.message_count == 0, "empty after purge")

# Consumers are counted; an exclusive consumer keeps others out (403).
watched = unique("watched")
channel.queue_declare(watched, auto_delete=True)
exclusive = connection.channel()
exclusive_tag = exclusive.basic_consume(watched, lambda *_: None, exclusive=True)
check(channel.queue_declare(watched, passive=True).method.consumer_count == 1, "consumer count")
intruder = connection.channel()
try:
    intruder.basic_consume(watched, lambda *_: None)
    check(False, "a second consumer joined a queue with an exclusive consumer")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 403, f"exclusive consumer: {error}")
# An auto-delete queue goes away when its last consumer does.
exclusive.basic_cancel(exclusive_tag)
try:
    channel.queue_declare(watched, passive=True)
    check(False, "an auto-delete queue outlived its last consumer")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 404, f"auto-delete: {error}")
channel = connection.channel()

# A passive declare of a missing queue closes the channel with 404.
try:
    channel.queue_declare(unique("missing"), passive=True)
    check(False, "passive declare of a missing queue succeeded")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 404, f"passive declare: {error}")

cleanup = connection.channel()
cleanup.queue_delete(queue)
connection.close()
print("ok")
