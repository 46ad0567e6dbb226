"""pika: two queues that dead-letter into each other with x-message-ttl 0
(each message expires at once) would pass messages around forever; RabbitMQ
drops a message that would re-enter a queue it already died in when no
consumer rejected it on the way. Each queue's dead-letter exchange is a fanout
that also feeds a tap queue, so every hop is visible: each message makes the
A -> B hop and the B -> A hop once, then is dropped. A second message,
published after the first finished its round, is the synchronization point:
queues expire in order, so had the first kept cycling, it would reach the
B tap again before the second does."""
import pika

from common import URL, check, pump_until, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
suffix = unique("cycle")
a, b = f"a-{suffix}", f"b-{suffix}"
tap_a, tap_b = f"tap-a-{suffix}", f"tap-b-{suffix}"  # what reaches a and b by dead-lettering
to_b, to_a = f"to-b-{suffix}", f"to-a-{suffix}"
for exchange in (to_a, to_b):
    channel.exchange_declare(exchange, "fanout")
channel.queue_declare(a, arguments={"x-message-ttl": 0, "x-dead-letter-exchange": to_b})
channel.queue_declare(b, arguments={"x-message-ttl": 0, "x-dead-letter-exchange": to_a})
for queue, exchange in ((b, to_b), (tap_b, to_b), (a, to_a), (tap_a, to_a)):
    if queue.startswith("tap"):
        channel.queue_declare(queue)
    channel.queue_bind(queue, exchange)

tapped = {tap_a: [], tap_b: []}


def tap(queue):
    def on_message(_channel, _method, properties, body):
        tapped[queue].append((body, [(d["queue"], d["reason"]) for d in properties.headers.get("x-death", [])]))

    channel.basic_consume(queue, on_message, auto_ack=True)


tap(tap_a)
tap(tap_b)
for body in (b"first", b"second"):
    channel.basic_publish("", a, body)
    pump_until(connection, lambda: any(got == body for got, _ in tapped[tap_a]), f"{body!r} back at a's door")

check([body for body, _ in tapped[tap_b]] == [b"first", b"second"], f"the b tap saw {tapped[tap_b]}")
check([body for body, _ in tapped[tap_a]] == [b"first", b"second"], f"the a tap saw {tapped[tap_a]}")
check(
    tapped[tap_a][0][1] == [(b, "expired"), (a, "expired")],
    f"x-death after one round: {tapped[tap_a][0][1]}",
)
for queue in (a, b, tap_a, tap_b):
    channel.queue_delete(queue)
for exchange in (to_a, to_b):
    channel.exchange_delete(exchange)
connection.close()
print("ok")
