"""pika: users from the config file's [amqp.users] log in; a wrong password
is refused with ACCESS_REFUSED as RabbitMQ refuses it."""
import sys

import pika
import pika.exceptions

from common import URL, round_trip

user, password = sys.argv[1], sys.argv[2]
address = URL.removeprefix("amqp://")


def connect(user, password):
    return pika.BlockingConnection(pika.URLParameters(f"amqp://{user}:{password}@{address}/%2f"))


round_trip(connect(user, password), b"hello from a configured user", "users")

for wrong in [(user, password + "x"), ("mallory", password)]:
    try:
        connect(*wrong).close()
    except pika.exceptions.ProbableAccessDeniedError:
        continue
    except pika.exceptions.ProbableAuthenticationError:
        continue
    raise AssertionError(f"{wrong[0]} logged in with a wrong password")
print("configured users ok")
