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


def sasl_plain(user, password):
    """confluent-kafka settings for `user` over SASL_PLAINTEXT with PLAIN."""
    return {
        "bootstrap.servers": KAFKA,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": password,
    }


def consume_values(consumer, topic, count):
    """Subscribes a confluent-kafka `consumer` to `topic`, polls (a minute
    at most) until `count` values came, closes it and returns them."""
    consumer.subscribe([topic])
    values = []
    for _ in range(60):
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            values.append(message.value())
        if len(values) == count:
            break
    consumer.close()
    return values
