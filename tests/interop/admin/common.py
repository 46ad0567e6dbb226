"""Shared helpers for the admin API interop scripts: the broker addresses,
and assertions that exit non-zero with a readable message."""
import os
import sys

BOOTSTRAP = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
HTTP = os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402,F401  (re-exported)
