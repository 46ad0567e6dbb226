"""pika: single active consumer (x-single-active-consumer) on a classic
queue, a quorum queue and a stream. Of three consumers, on three
connections, only the first attached gets messages; when it cancels, the
second takes over; when the second's connection is lost (closed with a
delivery unacked), the third takes over and gets that delivery again first,
then the rest, in order.

Consumer priorities: on a quorum queue (RabbitMQ 4) a consumer of higher
`x-priority` takes over from the active one once that one has acknowledged
what it holds, and nothing is delivered to either in between; on a classic
queue priorities do not move the active consumer."""
import pika

from common import URL, check, pump_until, unique


def pump_each(connections):
    """Runs the I/O of each open connection, briefly."""
    for connection in connections:
        if connection.is_open:
            connection.process_data_events(time_limit=0.02)


def pump_all(publisher, connections, condition, what):
    """Runs every consumer connection's I/O until condition() holds."""
    def any_progress():
        pump_each(connections)
        return condition()
    pump_until(publisher, any_progress, what)


def settle(connections):
    # Long enough for a wrongly active consumer to have been sent something.
    for _ in range(10):
        pump_each(connections)


def scenario(queue_type):
    queue = unique(f"sac-{queue_type}")
    arguments = {"x-single-active-consumer": True}
    if queue_type != "classic":
        arguments["x-queue-type"] = queue_type
    publisher = pika.BlockingConnection(pika.URLParameters(URL))
    publishing = publisher.channel()
    publishing.queue_declare(queue, durable=True, arguments=arguments)
    publishing.confirm_delivery()

    connections, channels, got = [], [], []
    for index in range(3):
        connection = pika.BlockingConnection(pika.URLParameters(URL))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=10)
        received = []
        got.append(received)

        def on_message(ch, method, properties, body, received=received, index=index):
            received.append(body.decode())
            # The second consumer holds its last delivery unacked, for the hand-over on connection loss.
            if not (index == 1 and body.endswith(b"held")):
                ch.basic_ack(method.delivery_tag)

        consume_arguments = {"x-stream-offset": "next"} if queue_type == "stream" else {}
        tag = channel.basic_consume(queue, on_message, arguments=consume_arguments)
        connections.append(connection)
        channels.append((channel, tag))

    for index in range(3):
        publishing.basic_publish("", queue, f"a{index}".encode())
    pump_all(publisher, connections, lambda: len(got[0]) == 3, f"{queue_type}: the first consumer's messages")
    settle(connections)
    check(got == [["a0", "a1", "a2"], [], []], f"{queue_type}: only the first consumer is active: {got}")

    # Hand-over on cancel.
    channel, tag = channels[0]
    channel.basic_cancel(tag)
    publishing.basic_publish("", queue, b"b0")
    publishing.basic_publish("", queue, b"b1-held")
    # A stream consumer is a reader at its own offset: attached at `next`
    # before anything was published, it reads the stream from there once
    # active. A queue's consumer gets what the queue still holds.
    expected = ["a0", "a1", "a2", "b0", "b1-held"] if queue_type == "stream" else ["b0", "b1-held"]
    pump_all(publisher, connections, lambda: len(got[1]) == len(expected), f"{queue_type}: the second consumer takes over after a cancel")
    settle(connections)
    check(got[1] == expected and got[2] == [], f"{queue_type}: after cancel: {got}")

    # Hand-over on connection loss.
    connections[1].close()
    publishing.basic_publish("", queue, b"c0")
    if queue_type == "stream":
        expected = ["a0", "a1", "a2", "b0", "b1-held", "c0"]
    else:
        # The delivery the lost connection held comes back first.
        expected = ["b1-held", "c0"]
    pump_all(publisher, connections, lambda: len(got[2]) == len(expected), f"{queue_type}: the third consumer takes over after a connection loss")
    check(got[2] == expected, f"{queue_type}: after connection loss: {got[2]}, expected {expected}")

    for connection in connections:
        if connection.is_open:
            connection.close()
    publishing.queue_delete(queue)
    publisher.close()


def priority_takeover(queue_type):
    queue = unique(f"sac-priority-{queue_type}")
    arguments = {"x-single-active-consumer": True, "x-queue-type": queue_type}
    publisher = pika.BlockingConnection(pika.URLParameters(URL))
    publishing = publisher.channel()
    publishing.queue_declare(queue, durable=True, arguments=arguments)
    publishing.confirm_delivery()

    connections, got, held = [], [[], []], []
    for index, priority in enumerate((0, 10)):
        connection = pika.BlockingConnection(pika.URLParameters(URL))
        channel = connection.channel()
        channel.basic_qos(prefetch_count=10)

        def on_message(ch, method, properties, body, index=index):
            got[index].append(body.decode())
            if body.endswith(b"held"):
                held.append((ch, method.delivery_tag))
            else:
                ch.basic_ack(method.delivery_tag)

        connections.append(connection)
        if index == 0:
            channel.basic_consume(queue, on_message)
            for name in ("a0", "a1-held"):
                publishing.basic_publish("", queue, name.encode())
            pump_until(publisher, lambda: connection.process_data_events(time_limit=0.02) or len(got[0]) == 2,
                       f"{queue_type}: the first consumer's messages")
        else:
            channel.basic_consume(queue, on_message, arguments={"x-priority": priority})

    for name in ("b0", "b1"):
        publishing.basic_publish("", queue, name.encode())
    if queue_type == "classic":
        pump_all(publisher, connections, lambda: len(got[0]) == 4, "classic: the active consumer keeps the messages")
        settle(connections)
        check(got == [["a0", "a1-held", "b0", "b1"], []], f"classic: priority does not move the active consumer: {got}")
    else:
        settle(connections)
        check(got == [["a0", "a1-held"], []],
              f"quorum: while the active consumer holds a message, neither gets more: {got}")
        channel, tag = held.pop()
        channel.basic_ack(tag)
        pump_all(publisher, connections, lambda: len(got[1]) == 2, "quorum: the higher-priority consumer takes over")
        settle(connections)
        check(got == [["a0", "a1-held"], ["b0", "b1"]], f"quorum: after the hand-over: {got}")
    for channel, tag in held:
        channel.basic_ack(tag)
    for connection in connections:
        connection.close()
    publishing.queue_delete(queue)
    publisher.close()


for queue_type in ("classic", "quorum", "stream"):
    scenario(queue_type)
for queue_type in ("quorum", "classic"):
    priority_takeover(queue_type)
print("single active consumer ok")
