"""pika: dead-lettering as RabbitMQ does it — a reject without requeue, an
expired message (x-message-ttl) and one past the delivery limit go to the
queue's dead-letter exchange with an x-death header saying why; max-length
with drop-head dead-letters the oldest, reject-publish nacks the new one."""
import pika

from common import URL, check, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))
channel = connection.channel()
suffix = unique("dl")
dlx = f"dlx-{suffix}"
channel.exchange_declare(dlx, "fanout", durable=True)
dead = f"dead-{suffix}"
channel.queue_declare(dead, durable=True)
channel.queue_bind(dead, dlx, "")


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

# A bad argument value is refused with 406.
try:
    channel.queue_declare(f"broken-{suffix}", arguments={"x-overflow": "explode"})
    check(False, "an invalid x-overflow was accepted")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 406, f"invalid argument: {error}")

connection.close()
print("ok")
