"""pika against a resource alarm, as RabbitMQ has them: when free disk falls
below the floor (raised here through the admin API, as an operator would
with `rabbitmqctl set_disk_free_limit`), a connection that publishes hears
connection.blocked and its message waits — not lost, not refused — while a
connection that only consumes carries on; when the alarm clears, the
publisher hears connection.unblocked and the message is stored."""
import json
import os
import time
import urllib.request

import pika

from common import URL, check, unique

HTTP = os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")


def set_disk_floor(floor_bytes):
    request = urllib.request.Request(
        f"http://{HTTP}/api/v1/alarms",
        data=json.dumps({"disk_free_min_bytes": floor_bytes}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def ready(queue):
    with urllib.request.urlopen(f"http://{HTTP}/api/v1/queues/{queue}", timeout=10) as response:
        return json.load(response)["messages_ready"]


queue = unique("blocked")
consumer = pika.BlockingConnection(pika.URLParameters(URL))
consuming = consumer.channel()
consuming.queue_declare(queue, durable=True)
consuming.basic_publish("", queue, b"before")

publisher = pika.BlockingConnection(pika.URLParameters(URL))
events = []
publisher.add_on_connection_blocked_callback(lambda _connection, method: events.append(("blocked", method.method.reason)))
publisher.add_on_connection_unblocked_callback(lambda _connection, _method: events.append(("unblocked", None)))
publishing = publisher.channel()

status = set_disk_floor(2**62)
check(status["disk_alarm"] is True, f"a floor above the free space raises the disk alarm: {status}")

# A consuming connection is not blocked.
method, _properties, body = consuming.basic_get(queue, auto_ack=True)
check(body == b"before", f"consumers carry on during an alarm: {body}")

# A publishing one is, and hears why.
publishing.basic_publish("", queue, b"during")


def pump_until(condition, what):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if condition():
            return
        publisher.process_data_events(time_limit=0.05)
    check(False, f"timed out waiting for {what}: {events}")


pump_until(lambda: events, "connection.blocked")
check(events == [("blocked", "low on disk")], f"blocked with RabbitMQ's reason: {events}")
check(ready(queue) == 0, "the message waits while the alarm is on")

status = set_disk_floor(0)
check(status["disk_alarm"] is False, f"a floor of 0 clears the alarm: {status}")
pump_until(lambda: len(events) == 2, "connection.unblocked")
check(events[1] == ("unblocked", None), f"unblocked: {events}")
# A round trip on the channel: the publish before it has been stored.
publishing.queue_declare(queue, passive=True)
method, _properties, body = consuming.basic_get(queue, auto_ack=True)
check(body == b"during", f"the blocked message was stored once the alarm cleared: {body}")

publisher.close()
consumer.close()
print("ok")
