"""Assertions and names shared by every interop script (each protocol's
common.py re-exports them): a failed check exits non-zero with a readable
message; unique() gives a topic, queue or group name no other run uses;
wait_until() polls a condition within a deadline (wait_for() one that
answers at once, between pauses); round_trip() proves a
pika connection works."""
import os
import sys
import time


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def unique(prefix):
    """A name no other test run uses."""
    return f"{prefix}-{os.getpid()}-{os.urandom(3).hex()}"


def wait_for(condition, what, seconds=60, interval=0.2):
    """Asks `condition` every `interval` seconds until it returns something
    truthy, and returns that; fails after `seconds` (for conditions that
    answer at once, such as a metadata request)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    check(False, f"timed out after {seconds} s waiting for {what}")


def wait_until(condition, what, seconds=45):
    """Polls `condition` until it holds, failing after `seconds`; each
    condition bounds its own wait (a poll of up to 100 ms), so the loop is
    bounded in count too."""
    deadline = time.monotonic() + seconds
    while not condition():
        check(time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}")


def round_trip(connection, body, prefix="round-trip"):
    """Publishes `body` to a new exclusive queue on the pika `connection`
    and gets it back, then closes the connection: the login it made is
    usable."""
    channel = connection.channel()
    queue = unique(prefix)
    channel.queue_declare(queue, exclusive=True)
    channel.basic_publish("", queue, body)
    _method, _properties, got = channel.basic_get(queue, auto_ack=True)
    check(got == body, f"sent {body!r} to {queue}, got {got!r}")
    connection.close()
