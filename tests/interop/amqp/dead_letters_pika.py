"""pika: dead-lettering as RabbitMQ does it — a reject without requeue, an
expired message (x-message-ttl or its own expiration, whether or not a
consumer comes by) and one past the delivery limit go to the queue's
dead-letter exchange with an x-death header saying why; max-length and
max-length-bytes with drop-head dead-letter the oldest, reject-publish nacks
the new one."""
import time

import pika

from common import URL, check, dead_letters, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
suffix = unique("dl")
dlx, dead = dead_letters(channel, suffix)


def declare(name, **arguments):
    full = f"{name}-{suffix}"
    channel.queue_declare(full, durable=True, arguments={"x-dead-letter-exchange": dlx, **arguments})
    return full


def next_dead():
    method, properties, body = channel.basic_get(dead, auto_ack=True)
    check(method is not None, "nothing in the dead-letter queue")
    death = properties.headers["x-death"][0]
    return body, death, properties.headers


# Rejected without requeue.
work = declare("work")
channel.basic_publish("", work, b"bad-job", pika.BasicProperties(headers={"job": 1}))
method, _properties, _body = channel.basic_get(work)
channel.basic_reject(method.delivery_tag, requeue=False)
body, death, headers = next_dead()
check(body == b"bad-job", f"dead body {body}")
check(death["reason"] == "rejected" and death["queue"] == work and death["count"] == 1, f"x-death {death}")
check(death["routing-keys"] == [work] and headers["x-first-death-reason"] == "rejected", f"x-death {death} {headers}")
check(headers["job"] == 1, "the message's own headers survive dead-lettering")

# Expired: x-message-ttl 0 means nothing waits; it is never delivered.
expiring = declare("expiring", **{"x-message-ttl": 0})
channel.basic_publish("", expiring, b"too-late")
method, _properties, _body = channel.basic_get(expiring)
check(method is None, "an expired message was delivered")
body, death, _headers = next_dead()
check(body == b"too-late" and death["reason"] == "expired", f"expired: {body} {death}")

# A message that expires while nobody consumes is dead-lettered by the
# broker's timer: no consumer has to come by first.
def wait_dead(what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        method, properties, body = channel.basic_get(dead, auto_ack=True)
        if method is not None:
            return body, properties.headers["x-death"][0]
        time.sleep(0.05)
    check(False, f"{what} was not dead-lettered within 10 s")


waiting = declare("waiting", **{"x-message-ttl": 200})
channel.basic_publish("", waiting, b"unread")
body, death = wait_dead("a message past x-message-ttl")
check(body == b"unread" and death["reason"] == "expired", f"timer expiry: {body} {death}")
check(channel.queue_declare(waiting, passive=True).method.message_count == 0, "the expired message left the queue")
unread = declare("unread")
channel.basic_publish("", unread, b"own-unread", pika.BasicProperties(expiration="200"))
channel.basic_publish("", unread, b"stays")
body, death = wait_dead("a message past its own expiration")
check(body == b"own-unread" and death["reason"] == "expired", f"timer expiry, own ttl: {body} {death}")
check(channel.queue_declare(unread, passive=True).method.message_count == 1, "the message without a TTL stays")

# Per-message expiration works the same way.
plain = declare("plain")
channel.basic_publish("", plain, b"own-ttl", pika.BasicProperties(expiration="0"))
method, _properties, _body = channel.basic_get(plain)
check(method is None, "a message past its own expiration was delivered")
body, death, _headers = next_dead()
check(body == b"own-ttl" and death["reason"] == "expired", f"per-message ttl: {body} {death}")

# Delivery limit: the second delivery would exceed x-delivery-limit 1.
limited = declare("limited", **{"x-delivery-limit": 1})
channel.basic_publish("", limited, b"poison")
method, _properties, _body = channel.basic_get(limited)
channel.basic_nack(method.delivery_tag, requeue=True)
method, _properties, _body = channel.basic_get(limited)
check(method is None, "a message past the delivery limit was delivered again")
body, death, _headers = next_dead()
check(body == b"poison" and death["reason"] == "delivery_limit", f"delivery limit: {body} {death}")

# Max length 2, drop-head: the oldest goes to the dead letters.
bounded = declare("bounded", **{"x-max-length": 2})
for index in range(3):
    channel.basic_publish("", bounded, f"m{index}".encode())
check(channel.queue_declare(bounded, passive=True).method.message_count == 2, "max-length holds 2")
body, death, _headers = next_dead()
check(body == b"m0" and death["reason"] == "maxlen", f"drop-head: {body} {death}")

# Max length 1, reject-publish: the publisher's confirm is a nack.
refusing = declare("refusing", **{"x-max-length": 1, "x-overflow": "reject-publish"})
confirming = connection.channel()
confirming.confirm_delivery()
confirming.basic_publish("", refusing, b"fits")
try:
    confirming.basic_publish("", refusing, b"overflows")
    check(False, "a publish into a full reject-publish queue was confirmed")
except pika.exceptions.NackError:
    pass
check(channel.queue_declare(refusing, passive=True).method.message_count == 1, "the refused message is not stored")

# Max length 10 bytes, drop-head: the oldest go until the ready bodies fit.
by_bytes = declare("by-bytes", **{"x-max-length-bytes": 10})
for body in (b"aaaa", b"bbbb", b"cccc"):
    channel.basic_publish("", by_bytes, body)
check(channel.queue_declare(by_bytes, passive=True).method.message_count == 2, "max-length-bytes 10 holds 8 bytes")
body, death, _headers = next_dead()
check(body == b"aaaa" and death["reason"] == "maxlen", f"drop-head by bytes: {body} {death}")
# Only ready messages count: one held by a consumer leaves room for another.
held, _properties, body = channel.basic_get(by_bytes)
check(body == b"bbbb", f"oldest kept message first: {body}")
channel.basic_publish("", by_bytes, b"dddd")
check(channel.queue_declare(by_bytes, passive=True).method.message_count == 2, "an unacked message does not count")
check(channel.basic_get(dead, auto_ack=True)[0] is None, "nothing more was dropped")
channel.basic_ack(held.delivery_tag)

# Max length 5 bytes, reject-publish: a body that would pass the limit is nacked.
refusing_bytes = declare("refusing-bytes", **{"x-max-length-bytes": 5, "x-overflow": "reject-publish"})
confirming.basic_publish("", refusing_bytes, b"12345")
try:
    confirming.basic_publish("", refusing_bytes, b"6")
    check(False, "a publish past x-max-length-bytes was confirmed")
except pika.exceptions.NackError:
    pass
method, _properties, body = channel.basic_get(refusing_bytes, auto_ack=True)
check(body == b"12345", f"the message that fit is kept: {body}")
confirming.basic_publish("", refusing_bytes, b"6")

# A headers exchange as the dead-letter exchange routes on the message's own headers.
by_kind = f"dlx-headers-{suffix}"
channel.exchange_declare(by_kind, "headers", durable=True)
invoices = f"dead-invoices-{suffix}"
channel.queue_declare(invoices, durable=True)
channel.queue_bind(invoices, by_kind, "", arguments={"x-match": "all", "kind": "invoice"})
typed = f"typed-{suffix}"
channel.queue_declare(typed, durable=True, arguments={"x-dead-letter-exchange": by_kind})
channel.basic_publish("", typed, b"bad-invoice", pika.BasicProperties(headers={"kind": "invoice"}))
channel.basic_publish("", typed, b"bad-receipt", pika.BasicProperties(headers={"kind": "receipt"}))
for _ in range(2):
    method, _properties, _body = channel.basic_get(typed)
    channel.basic_reject(method.delivery_tag, requeue=False)
method, properties, body = channel.basic_get(invoices, auto_ack=True)
check(body == b"bad-invoice", f"dead-lettered by headers: {body}")
check(properties.headers["x-death"][0]["reason"] == "rejected", f"x-death {properties.headers}")
check(channel.basic_get(invoices, auto_ack=True)[0] is None, "a message whose headers do not match is not routed there")

# A bad argument value is refused with 406.
try:
    channel.queue_declare(f"broken-{suffix}", arguments={"x-overflow": "explode"})
    check(False, "an invalid x-overflow was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"invalid argument: {error}")
channel = connection.channel()
try:
    channel.queue_declare(f"broken-bytes-{suffix}", arguments={"x-max-length-bytes": -1})
    check(False, "a negative x-max-length-bytes was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"invalid argument: {error}")

connection.close()
print("ok")
