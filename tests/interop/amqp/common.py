"""Shared helpers for the AMQP interop scripts: the broker URL and
assertions that exit non-zero with a readable message."""
import os
import sys

URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402,F401  (re-exported)
