"""Shared helpers for the Kafka interop scripts: the broker address, and
assertions that exit non-zero with a readable message."""
import os
import sys

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def unique(prefix):
    """A topic or group name no other test run uses."""
    return f"{prefix}-{os.getpid()}-{os.urandom(3).hex()}"
