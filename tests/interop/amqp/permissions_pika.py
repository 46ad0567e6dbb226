"""pika against users and RabbitMQ permissions: a configured user logs in
and uses what it is granted; a wrong password is refused with 403; a
permission entry that denies configure refuses queue.declare with 403
ACCESS_REFUSED and RabbitMQ's text; a vhost the user has no entry for
cannot be opened (530). Arguments: the phase (`before` a restart: the
administrator declares the queue; `after`: the grants must still hold)
and the queue's name. alice/s3cret has the entry '^$' '.*' '.*' on `/`
and none on `staging`; admin/adminpw is an administrator."""
import sys
import urllib.parse

import pika
import pika.exceptions

from common import URL, check

phase, queue = sys.argv[1], sys.argv[2]
address = URL.removeprefix("amqp://")


def connect(user, password, vhost="/"):
    quoted = urllib.parse.quote(vhost, safe="")
    return pika.BlockingConnection(pika.URLParameters(f"amqp://{user}:{password}@{address}/{quoted}"))


if phase == "before":
    admin = connect("admin", "adminpw")
    admin.channel().queue_declare(queue, durable=True)
    admin.close()

# Write on amq.default and read on the queue are granted.
alice = connect("alice", "s3cret")
channel = alice.channel()
channel.confirm_delivery()
channel.basic_publish("", queue, f"from alice {phase}".encode())
_method, _properties, body = channel.basic_get(queue, auto_ack=True)
check(body == f"from alice {phase}".encode(), f"alice got {body!r}")

# Configure is not: declaring a queue is refused on the channel, with RabbitMQ's text.
try:
    channel.queue_declare(f"{queue}-mine")
    check(False, "alice declared a queue without configure permission")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 403, f"reply code {error.reply_code}")
    expected = f"ACCESS_REFUSED - configure access to queue '{queue}-mine' in vhost '/' refused for user 'alice'"
    check(error.reply_text == expected, f"reply text {error.reply_text!r}")
check(alice.is_open, "a channel exception leaves the connection open")
alice.close()

# No permission entry for staging: the vhost cannot be opened.
try:
    connect("alice", "s3cret", "staging").close()
    check(False, "alice opened staging without a permission entry")
except pika.exceptions.AMQPConnectionError as error:
    expected = "(530) \"NOT_ALLOWED - access to vhost 'staging' refused for user 'alice'\""
    check(any(expected in str(argument) for argument in error.args), repr(error))

# A wrong password is refused with 403 ACCESS_REFUSED at login.
try:
    connect("alice", "wrong").close()
    check(False, "alice logged in with a wrong password")
except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError) as error:
    check("ACCESS_REFUSED" in str(error) or "403" in str(error), repr(error))
print("ok")
