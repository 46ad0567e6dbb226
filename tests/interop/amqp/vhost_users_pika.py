"""pika: vhosts from the config file exist at startup, and a user listed in
[amqp.user_vhosts] may open only those vhosts (530 "access to vhost 'X'
refused for user 'Y'", RabbitMQ's text), while other users may open every
vhost. Arguments: the limited user, the unlimited one (password "s3cret"
for both) and the configured vhost."""
import sys
import urllib.parse

import pika
import pika.exceptions

from common import URL, check, round_trip

limited, unlimited, vhost = sys.argv[1], sys.argv[2], sys.argv[3]
address = URL.removeprefix("amqp://")


def connect(user, name):
    quoted = urllib.parse.quote(name, safe="")
    return pika.BlockingConnection(pika.URLParameters(f"amqp://{user}:s3cret@{address}/{quoted}"))


def use(user, name):
    round_trip(connect(user, name), f"hello from {user} in {name}".encode(), "vhost-users")


use(limited, vhost)
use(unlimited, vhost)
use(unlimited, "/")
try:
    connect(limited, "/").close()
    check(False, f"{limited} opened / although only {vhost} is allowed")
except pika.exceptions.AMQPConnectionError as error:
    # pika wraps the broker's connection.close (code and text) in the error's first argument.
    expected = f"(530) \"NOT_ALLOWED - access to vhost '/' refused for user '{limited}'\""
    check(any(expected in str(argument) for argument in error.args), repr(error))
print("ok")
