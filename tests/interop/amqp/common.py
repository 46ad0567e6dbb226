"""Shared helpers for the AMQP interop scripts: the broker URL and
assertions that exit non-zero with a readable message."""
import os
import sys

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def unique(prefix):
    """A queue name no other test run uses."""
    return f"{prefix}-{os.getpid()}-{os.urandom(3).hex()}"
