"""A pika connection an operator closes through the admin API.

Opens a named connection (client property `connection_name`) with one
channel, prints "open", then serves the connection until the broker closes
it (bounded); checks the close is 320 CONNECTION_FORCED with RabbitMQ's
reason and prints "closed 320"."""
import os
import time

import pika

from common import check

parameters = pika.URLParameters(os.environ["CONVEYOR_AMQP"])
parameters.client_properties = {"connection_name": "admin-api-pika"}
connection = pika.BlockingConnection(parameters)
channel = connection.channel()
print("open", flush=True)
deadline = time.monotonic() + 60
closed = None
while closed is None and time.monotonic() < deadline:
    try:
        connection.process_data_events(time_limit=0.2)
    except pika.exceptions.ConnectionClosedByBroker as error:
        closed = error
check(closed is not None, "the broker did not close the connection within 60 s")
check(closed.reply_code == 320, f"closed with {closed.reply_code}, not 320")
check("closed via management API" in closed.reply_text, f"reason {closed.reply_text!r}")
check(not connection.is_open, "the connection is closed on the client's side too")
print(f"closed {closed.reply_code}", flush=True)
