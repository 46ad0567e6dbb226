"""Virtual hosts with pika, in two runs around a broker restart.

`before VHOST`: the vhost is created through the admin API; the same queue
name in `/` and in the vhost is two queues, and what is published in one
never reaches the other (default exchange and amq.fanout alike); a
dead-letter exchange named as declared resolves in the vhost and x-death
shows the names as declared; errors name the vhost; a client of `/` cannot
name the vhost's resources; an unknown vhost is refused with 530; the
admin API lists each queue with its vhost, SQS only `/`'s. One persistent message is left
in the vhost's queue.

`after VHOST` (after the restart): the vhost, its queue and the message are
still there; deleting the vhost through the admin API closes its open
connection (320) and removes its queue, and connecting to it is refused
again, while `/`'s queue of the same name stays."""
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pika

from common import URL, check

HTTP = "http://" + os.environ["CONVEYOR_HTTP"]
mode, vhost = sys.argv[1], sys.argv[2]
QUEUE = "orders"


def admin(method, path):
    request = urllib.request.Request(HTTP + "/api/v1" + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def vhost_path(name):
    return "/vhosts/" + urllib.parse.quote(name, safe="")


def connect(name):
    return pika.BlockingConnection(pika.URLParameters(URL + "/" + urllib.parse.quote(name, safe="")))


def refused_with_530(name):
    """Whether connection.open to `name` is refused with RabbitMQ's 530 and text."""
    try:
        connect(name).close()
    except pika.exceptions.AMQPConnectionError as error:
        # pika wraps the broker's connection.close in ProbableAccessDeniedError at this stage.
        return any(f"(530) 'NOT_ALLOWED - vhost {name} not found'" in str(argument) for argument in error.args)
    return False


def channel_error(connection, action):
    """Runs `action` on a fresh channel; the broker's channel close (code, text), or None."""
    channel = connection.channel()
    try:
        action(channel)
    except pika.exceptions.ChannelClosedByBroker as error:
        return error.reply_code, error.reply_text
    channel.close()
    return None


def get_one(channel, queue):
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    return (None, None) if method is None else (properties, body)


def listed_queues():
    status, queues = admin("GET", "/queues")
    check(status == 200, f"GET /queues: {status}")
    return {(queue["vhost"], queue["name"]) for queue in queues}


if mode == "before":
    status, _ = admin("PUT", vhost_path(vhost))
    check(status == 201, f"PUT vhost: {status}")
    status, _ = admin("PUT", vhost_path(vhost))
    check(status == 204, f"PUT of an existing vhost: {status}")
    status, vhosts = admin("GET", "/vhosts")
    check(status == 200 and [entry["name"] for entry in vhosts] == ["/", vhost], f"vhosts: {vhosts}")
    check(vhosts[1]["exchanges"] == 6, f"a new vhost has the default exchange and five amq.* ones: {vhosts[1]}")

    check(refused_with_530("no-such-vhost"), "an unknown vhost is refused with 530")

    root, inner = connect("/"), connect(vhost)
    root_channel, inner_channel = root.channel(), inner.channel()
    for channel in (root_channel, inner_channel):
        channel.confirm_delivery()
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_bind(QUEUE, "amq.fanout")
    root_channel.basic_publish("", QUEUE, b"from-root")
    inner_channel.basic_publish("", QUEUE, b"from-vhost")
    root_channel.basic_publish("amq.fanout", "", b"root-fanout")
    inner_channel.basic_publish("amq.fanout", "", b"vhost-fanout")
    root_bodies = [get_one(root_channel, QUEUE)[1] for _ in range(3)]
    inner_bodies = [get_one(inner_channel, QUEUE)[1] for _ in range(3)]
    check(root_bodies == [b"from-root", b"root-fanout", None], f"/ got {root_bodies}")
    check(inner_bodies == [b"from-vhost", b"vhost-fanout", None], f"{vhost} got {inner_bodies}")
    declared = inner_channel.queue_declare(QUEUE, passive=True).method
    check(declared.queue == QUEUE, f"declare-ok names the queue as declared: {declared.queue}")

    # Dead-lettering resolves the exchange in the vhost; x-death shows the names as declared.
    inner_channel.exchange_declare("dlx", "fanout", durable=True)
    inner_channel.queue_declare("dead", durable=True)
    inner_channel.queue_bind("dead", "dlx")
    inner_channel.queue_declare("work", durable=True, arguments={"x-dead-letter-exchange": "dlx"})
    inner_channel.basic_publish("", "work", b"doomed")
    method, _properties, body = inner_channel.basic_get("work")
    check(body == b"doomed", f"work got {body}")
    inner_channel.basic_reject(method.delivery_tag, requeue=False)
    dead = None
    for _ in range(50):
        method, properties, body = inner_channel.basic_get("dead", auto_ack=True)
        if method is not None:
            dead = (method, properties, body)
            break
        inner.sleep(0.1)
    check(dead is not None, "the rejected message reached the vhost's dead-letter queue")
    method, properties, body = dead
    check(method.exchange == "" and method.routing_key == "work", f"deliver fields: {method}")
    death = properties.headers["x-death"][0]
    check(death["queue"] == "work" and death["reason"] == "rejected" and death["exchange"] == "", f"x-death: {death}")
    check(properties.headers["x-first-death-queue"] == "work", f"headers: {properties.headers}")
    check(
        channel_error(root, lambda channel: channel.queue_declare("dead", passive=True))[0] == 404,
        "the vhost's dead-letter queue is not in /",
    )

    # Errors name the vhost; / cannot reach into the vhost's namespace.
    code, text = channel_error(inner, lambda channel: channel.queue_declare("missing", passive=True))
    check(code == 404 and text == f"NOT_FOUND - no queue 'missing' in vhost '{vhost}'", f"{code} {text}")
    code, text = channel_error(inner, lambda channel: channel.exchange_declare("nope", passive=True))
    check(code == 404 and f"no exchange 'nope' in vhost '{vhost}'" in text, f"{code} {text}")
    code, text = channel_error(inner, lambda channel: channel.exchange_declare("dlx", "direct", durable=True))
    check(code == 406 and "amq.vhost" not in text, f"inequivalent redeclare: {code} {text}")
    internal = "amq.vhost/" + urllib.parse.quote(vhost, safe="-_.~") + "/" + QUEUE
    code, _text = channel_error(root, lambda channel: channel.queue_declare(internal, passive=True))
    check(code == 403, f"/ naming the vhost's queue: {code}")

    queues = listed_queues()
    check({("/", QUEUE), (vhost, QUEUE), (vhost, "dead"), (vhost, "work")} <= queues, f"admin queues: {queues}")
    # The admin API's endpoints for one queue take ?vhost=.
    status, detail = admin("GET", f"/queues/work?vhost={urllib.parse.quote(vhost, safe='')}")
    check(status == 200 and detail["vhost"] == vhost and detail["dead_letter_queues"] == ["dead"], f"{status} {detail}")
    status, detail = admin("GET", f"/queues/dead?vhost={urllib.parse.quote(vhost, safe='')}")
    check(status == 200 and detail["dead_letter_sources"] == ["work"], f"{status} {detail}")
    status, _ = admin("GET", "/queues/dead")
    check(status == 404, f"GET /queues/dead without ?vhost= looks in /: {status}")
    status, _ = admin("GET", "/queues/dead?vhost=no-such-vhost")
    check(status == 404, f"an unknown ?vhost=: {status}")
    # SQS sees `/`'s queues only.
    sqs = boto3.client("sqs", endpoint_url=HTTP, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    names = [url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", [])]
    check(names == [QUEUE], f"SQS ListQueues: {names}")

    inner_channel.basic_publish("", QUEUE, b"kept", pika.BasicProperties(delivery_mode=2))
    root.close()
    inner.close()
    print("ok")
    sys.exit(0)

check(mode == "after", f"unknown mode {mode}")
status, vhosts = admin("GET", "/vhosts")
check([entry["name"] for entry in vhosts] == ["/", vhost], f"vhosts after the restart: {vhosts}")
inner = connect(vhost)
channel = inner.channel()
body = get_one(channel, QUEUE)[1]
check(body == b"kept", f"the vhost's queue after the restart: {body}")

status, _ = admin("DELETE", vhost_path(vhost))
check(status == 204, f"DELETE vhost: {status}")
# The vhost's open connection is closed, as RabbitMQ closes them.
closed_with = None
for _ in range(100):
    try:
        inner.process_data_events(time_limit=0.1)
    except pika.exceptions.ConnectionClosedByBroker as error:
        closed_with = error.reply_code
        break
check(closed_with == 320, f"the connection to the deleted vhost: {closed_with}")
status, _ = admin("DELETE", vhost_path(vhost))
check(status == 404, f"DELETE of a deleted vhost: {status}")
status, _ = admin("DELETE", vhost_path("/"))
check(status == 400, f"DELETE of /: {status}")
check(refused_with_530(vhost), "a deleted vhost is refused")
queues = listed_queues()
check(not any(name == vhost for name, _ in queues), f"the vhost's queues are gone: {queues}")
check(("/", QUEUE) in queues, f"/'s queue of the same name stays: {queues}")
print("ok")
