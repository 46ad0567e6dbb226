"""Shared helpers for the AMQP interop scripts: the broker URL,
assertions that exit non-zero with a readable message, and waiting on a
pika connection for a condition."""
import os
import sys
import time

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402,F401  (re-exported)


def pump_until(connection, condition, what, seconds=10):
    """Runs a pika BlockingConnection's I/O until condition() holds; fails
    with `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() >= deadline:
            check(False, f"timed out waiting for {what}")
        connection.process_data_events(time_limit=0.05)
