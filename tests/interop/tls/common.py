"""Shared helpers for the TLS and authentication interop scripts: the
broker's TLS addresses, the test CA, and assertions."""
import os
import sys

KAFKA = os.environ.get("CONVEYOR_KAFKA", "127.0.0.1:9092")
KAFKA_TLS = os.environ.get("CONVEYOR_KAFKA_TLS", "")
AMQP = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")
AMQP_TLS = os.environ.get("CONVEYOR_AMQP_TLS", "")
HTTP = os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")
HTTPS = os.environ.get("CONVEYOR_HTTPS", "")
# The test's CA certificate, which signed the broker's certificate.
CA_FILE = os.environ.get("CONVEYOR_TEST_CA", "")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, round_trip, unique  # noqa: E402,F401  (re-exported)
