"""pika: deleting a queue cancels its consumers (RabbitMQ's
consumer_cancel_notify): add_on_cancel_callback fires and start_consuming
returns, whether the queue was deleted over AMQP by another connection or
through the admin API; the consumer's tag can be used again and the channel
stays usable. connection.update-secret is answered and the connection stays
open."""
import os
import urllib.request

import pika

from common import URL, check, pump_until, unique

HTTP = os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")

consuming = pika.BlockingConnection(pika.URLParameters(URL))
deleting = pika.BlockingConnection(pika.URLParameters(URL))
check(
    consuming._impl.server_capabilities.get("consumer_cancel_notify") is True,
    f"capabilities: {consuming._impl.server_capabilities}",
)


def delete_over_amqp(queue):
    deleting.channel().queue_delete(queue)


def delete_over_admin_api(queue):
    request = urllib.request.Request(f"http://{HTTP}/api/v1/queues/{queue}", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        check(response.status == 200, f"admin API delete: {response.status}")


channel = consuming.channel()
cancelled = []
channel.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
for delete in (delete_over_amqp, delete_over_admin_api):
    queue = unique(f"cancelled-{delete.__name__}")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"held")
    cancelled.clear()
    received = []
    tag = channel.basic_consume(queue, lambda ch, method, props, body: received.append(method.delivery_tag))
    pump_until(consuming, lambda: received, "the delivery before the delete")
    delete(queue)
    pump_until(consuming, lambda: cancelled, f"basic.cancel after {delete.__name__}")
    check(cancelled == [tag], f"cancelled {cancelled}, consumer {tag}")
    check(channel.consumer_tags == [], f"consumers left: {channel.consumer_tags}")
    # No consumer is left: start_consuming returns at once instead of waiting forever.
    channel.start_consuming()
    # Acking a delivery of the deleted queue is no error (RabbitMQ ignores it).
    channel.basic_ack(received[0])
    # The tag is free again, and the channel still works.
    channel.queue_declare(queue)
    channel.basic_consume(queue, lambda *_: None, consumer_tag=tag)
    channel.basic_cancel(tag)
    channel.queue_delete(queue)

# update-secret (OAuth 2 token refresh) keeps the connection open.
consuming.update_secret("new-secret", "token refresh")
check(consuming.is_open, "the connection closed after update-secret")
probe = consuming.channel()
probe.queue_declare(unique("after-update-secret"), exclusive=True)
check(consuming.is_open and probe.is_open, "the connection is unusable after update-secret")

consuming.close()
deleting.close()
print("cancel notify ok")
