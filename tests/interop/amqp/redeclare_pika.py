"""pika: declaring a queue that exists, in RabbitMQ's order — the
declaration is compared with the queue first (its flags, then the
arguments its type compares, unknown ones not), and its arguments are
checked only when the queue is new. Each refusal closes the channel with
406 and RabbitMQ's text."""
import pika

from common import URL, check, unique

connection = pika.BlockingConnection(pika.URLParameters(URL))


def refused(name, expected, **declare):
    channel = connection.channel()
    try:
        channel.queue_declare(name, **declare)
        check(False, f"{declare} on {name} was accepted")
    except pika.exceptions.ChannelClosedByBroker as error:
        text = f"PRECONDITION_FAILED - {expected}"
        check(error.reply_code == 406 and error.reply_text == text, f"{error.reply_code} {error.reply_text!r}, expected {text!r}")


channel = connection.channel()
limited = unique("limited")
channel.queue_declare(limited, durable=True, arguments={"x-max-length": 10})

inequivalent = f"inequivalent arg '{{}}' for queue '{limited}' in vhost '/': received {{}} but current is {{}}"
for what, expected, declare in [
    # An invalid value over a valid one is inequivalent, not invalid.
    ("an invalid value", ("x-max-length", "the value 'abc' of type 'longstr'", "'10'"), {"arguments": {"x-max-length": "abc"}}),
    ("left out", ("x-max-length", "none", "'10'"), {}),
    # The flags come first.
    ("the flags first", ("durable", "'false'", "'true'"), {"durable": False, "arguments": {"x-max-length": "abc"}}),
]:
    refused(limited, inequivalent.format(*expected), **{"durable": True, **declare})
    print(f"refused: {what}")

# Arguments RabbitMQ does not compare, an x-queue-type of classic where
# none was given, and a passive declare's arguments do not matter.
channel = connection.channel()
declared = channel.queue_declare(
    limited, durable=True, arguments={"x-max-length": 10, "x-queue-type": "classic", "x-custom": "anything"}
)
check(declared.method.queue == limited, f"redeclared: {declared.method}")
declared = channel.queue_declare(limited, passive=True, arguments={"x-max-length": "abc"})
check(declared.method.message_count == 0, f"passive: {declared.method}")

# A new queue's invalid argument is refused as invalid, and the queue is
# not created.
fresh = unique("fresh")
refused(
    fresh,
    f"invalid arg 'x-max-length' for queue '{fresh}' in vhost '/': \"expected integer, got longstr\"",
    durable=True,
    arguments={"x-max-length": "abc"},
)
channel = connection.channel()
try:
    channel.queue_declare(fresh, passive=True)
    check(False, f"{fresh} was created by a refused declaration")
except pika.exceptions.ChannelClosedByBroker as error:
    check(error.reply_code == 404, f"passive declare of a refused queue: {error}")

connection.close()
print("redeclare ok")
