"""pika: transactions and channel-wide prefetch. On a tx channel publishes
and acks take effect at tx.commit and are discarded by tx.rollback (rolled
back acks leave the deliveries unacknowledged); tx and confirm mode exclude
each other; tx.commit outside tx mode is a 406. A global basic.qos bounds
what all consumers of the channel hold together. channel.flow off pauses
deliveries to a channel's consumers (another channel's consumer of the same
queue gets everything meanwhile) and back on resumes them."""
import pika
import pika.exceptions

from common import URL, check, pump_until, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
observer = connection.channel()
suffix = unique("tx")


def ready(queue):
    return observer.queue_declare(queue, passive=True).method.message_count


def refused_with(code, action):
    channel = connection.channel()
    try:
        action(channel)
    except pika.exceptions.ChannelClosedByBroker as closed:
        check(closed.reply_code == code, f"expected {code}, got {closed.reply_code} {closed.reply_text}")
        return
    raise AssertionError(f"expected a {code} channel close")


queue = f"orders-{suffix}"
observer.queue_declare(queue, durable=True)
tx = connection.channel()
tx.tx_select()
tx.basic_publish("", queue, b"first")
tx.basic_publish("", queue, b"second")
check(ready(queue) == 0, "uncommitted publishes are visible")
tx.tx_commit()
check(ready(queue) == 2, f"after commit {ready(queue)} ready, not 2")
tx.basic_publish("", queue, b"rolled-back")
tx.tx_rollback()
check(ready(queue) == 2, "a rolled back publish was enqueued")

# An ack inside a rolled back transaction does not settle the delivery.
method, _properties, body = tx.basic_get(queue)
check(body == b"first", f"got {body}")
tx.basic_ack(method.delivery_tag)
tx.tx_rollback()
check(ready(queue) == 1, "one held by the tx channel, one ready")
tx.basic_ack(method.delivery_tag)
tx.tx_commit()
tx.close()
check(ready(queue) == 1, "the committed ack was lost when the channel closed")
method, _properties, body = observer.basic_get(queue, auto_ack=True)
check(body == b"second" and not method.redelivered, f"left in the queue: {body}")

refused_with(406, lambda channel: (channel.tx_select(), channel.confirm_delivery()))
refused_with(406, lambda channel: (channel.confirm_delivery(), channel.tx_select()))
refused_with(406, lambda channel: channel.tx_commit())
refused_with(406, lambda channel: channel.tx_rollback())

# Global prefetch 3 over two consumers: together they hold 3.
queues = [f"left-{suffix}", f"right-{suffix}"]
for name in queues:
    observer.queue_declare(name, durable=True)
    for index in range(5):
        observer.basic_publish("", name, f"{name}-{index}".encode())
holder = connection.channel()
holder.basic_qos(prefetch_count=3, global_qos=True)
held = []
for name in queues:
    holder.basic_consume(name, lambda _channel, method, _properties, body: held.append((method.delivery_tag, body)))
pump_until(connection, lambda: len(held) >= 3, "3 deliveries")
check(len(held) == 3, f"held {len(held)} with a global prefetch of 3")
check(sum(ready(name) for name in queues) == 7, "the broker acquired past the channel's window")
holder.basic_ack(held[0][0])
pump_until(connection, lambda: len(held) >= 4, "a 4th delivery")
check(len(held) == 4, "an ack did not make room for another delivery")
check(sum(ready(name) for name in queues) == 6, "the window grew past 3")

# channel.flow: two consumers of one queue on two channels; the paused one
# gets nothing, so round-robin hands every message to the other.
queue = f"flow-{suffix}"
observer.queue_declare(queue, durable=True)
paused, flowing = connection.channel(), connection.channel()
got = {"paused": [], "flowing": []}
check(paused.flow(False) is False, "flow off was not confirmed")
paused.basic_consume(queue, lambda _channel, _method, _properties, body: got["paused"].append(body), auto_ack=True)
flowing_tag = flowing.basic_consume(queue, lambda _channel, _method, _properties, body: got["flowing"].append(body), auto_ack=True)
for index in range(6):
    observer.basic_publish("", queue, f"during-{index}".encode())
pump_until(connection, lambda: len(got["flowing"]) >= 6, "6 deliveries to the flowing channel")
check(len(got["flowing"]) == 6 and got["paused"] == [], f"while paused: {got}")
flowing.basic_cancel(flowing_tag)
check(paused.flow(True) is True, "flow on was not confirmed")
for index in range(2):
    observer.basic_publish("", queue, f"after-{index}".encode())
pump_until(connection, lambda: len(got["paused"]) >= 2, "2 deliveries after flow on")
check(got["paused"] == [b"after-0", b"after-1"], f"after flow on: {got['paused']}")
connection.close()
print("tx, global qos and flow ok")
