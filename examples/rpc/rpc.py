"""RPC over AMQP with pika, as RabbitMQ's RPC tutorial does it: the client
publishes each request to `rpc_queue` with `reply_to` naming its own
exclusive callback queue and a unique `correlation_id`; a server computes
the answer and publishes it to `reply_to` with the same correlation id; the
client matches replies to requests by that id. Two servers share the
request queue. Exits non-zero unless every call got its own answer."""
import os
import sys
import threading
import time
import uuid

import pika

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
RPC_QUEUE = f"rpc_queue-{uuid.uuid4().hex[:8]}"
DEADLINE_S = 30


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def serve(ready, stop):
    """An RPC server: answers fib(n) requests until told to stop."""
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    channel.queue_declare(RPC_QUEUE)
    channel.basic_qos(prefetch_count=1)

    def on_request(channel, method, properties, body):
        answer = fib(int(body))
        channel.basic_publish(
            "",
            properties.reply_to,
            str(answer).encode(),
            pika.BasicProperties(correlation_id=properties.correlation_id),
        )
        channel.basic_ack(method.delivery_tag)

    channel.basic_consume(RPC_QUEUE, on_request)
    ready.set()
    while not stop.is_set():
        connection.process_data_events(time_limit=0.05)
    connection.close()


class FibonacciClient:
    def __init__(self):
        self.connection = pika.BlockingConnection(pika.URLParameters(URL))
        self.channel = self.connection.channel()
        self.callback_queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.basic_consume(self.callback_queue, self.on_response, auto_ack=True)
        self.responses = {}

    def on_response(self, _channel, _method, properties, body):
        self.responses[properties.correlation_id] = int(body)

    def call_many(self, numbers):
        """Sends every request at once, then waits for every answer."""
        ids = {}
        for n in numbers:
            correlation_id = str(uuid.uuid4())
            ids[correlation_id] = n
            self.channel.basic_publish(
                "", RPC_QUEUE, str(n).encode(),
                pika.BasicProperties(reply_to=self.callback_queue, correlation_id=correlation_id),
            )
        deadline = time.monotonic() + DEADLINE_S
        while not ids.keys() <= self.responses.keys() and time.monotonic() < deadline:
            self.connection.process_data_events(time_limit=0.05)
        return {n: self.responses.get(correlation_id) for correlation_id, n in ids.items()}


stop = threading.Event()
servers = []
for _ in range(2):
    ready = threading.Event()
    thread = threading.Thread(target=serve, args=(ready, stop))
    thread.start()
    ready.wait(DEADLINE_S)
    servers.append(thread)

client = FibonacciClient()
numbers = list(range(1, 21))
answers = client.call_many(numbers)
for n in (5, 10, 20):
    print(f"fib({n}) = {answers[n]}")
stop.set()
for thread in servers:
    thread.join(timeout=10)
client.channel.queue_delete(RPC_QUEUE)
client.connection.close()

wrong = {n: answer for n, answer in answers.items() if answer != fib(n)}
if wrong:
    sys.exit(f"FAILED: wrong or missing answers {wrong}")
print(f"ok: {len(numbers)} concurrent calls, each answered with its own result")
