"""Assertions and names shared by every interop script (each protocol's
common.py re-exports them): a failed check exits non-zero with a readable
message; unique() gives a topic, queue or group name no other run uses."""
import os
import sys


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def unique(prefix):
    """A name no other test run uses."""
    return f"{prefix}-{os.getpid()}-{os.urandom(3).hex()}"
