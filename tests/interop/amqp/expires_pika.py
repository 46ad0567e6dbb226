"""pika: x-expires deletes a queue left unused (no consumers, no gets, not
redeclared) while a queue with a consumer stays; x-expires 0 is refused."""
import time

import pika
import pika.exceptions

from common import URL, check, unique

EXPIRES_MS = 300
DEADLINE_S = 20

connection = pika.BlockingConnection(pika.URLParameters(URL))
suffix = unique("expires")
busy, idle = f"busy-{suffix}", f"idle-{suffix}"
consumer = connection.channel()
# The busy queue is declared first: when the idle one expires, the busy
# one's time would have run out too, had its consumer not counted as use.
consumer.queue_declare(busy, arguments={"x-expires": EXPIRES_MS})
consumer.basic_consume(busy, lambda *_: None)
consumer.queue_declare(idle, arguments={"x-expires": EXPIRES_MS})


def exists(queue):
    channel = connection.channel()
    try:
        channel.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as closed:
        check(closed.reply_code == 404, f"passive declare: {closed.reply_code} {closed.reply_text}")
        return False
    channel.close()
    return True


deadline = time.monotonic() + DEADLINE_S
while exists(idle) and time.monotonic() < deadline:
    connection.process_data_events(time_limit=0.1)
check(not exists(idle), f"the idle queue outlived x-expires {EXPIRES_MS} ms by {DEADLINE_S} s")
check(exists(busy), "a queue with a consumer expired")

refused = connection.channel()
try:
    refused.queue_declare(f"zero-{suffix}", arguments={"x-expires": 0})
    raise AssertionError("x-expires 0 was accepted")
except pika.exceptions.ChannelClosedByBroker as closed:
    check(closed.reply_code == 406, f"x-expires 0: {closed.reply_code} {closed.reply_text}")
connection.close()
print("x-expires ok")
