"""Shared helpers for the SQS interop scripts: a boto3 client for the broker
under test and assertions that exit non-zero with a readable message."""
import os
import sys

import boto3
from botocore.config import Config

ENDPOINT = "http://" + os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")
AMQP_URL = os.environ.get("CONVEYOR_AMQP", "amqp://127.0.0.1:5672")


def client(retries=None):
    """An SQS client of the broker; one attempt per call unless `retries`
    (botocore's retry settings) says otherwise."""
    return boto3.client(
        "sqs",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # Long polls of up to 20 s must not hit the client's read timeout.
        config=Config(read_timeout=30, retries=retries or {"max_attempts": 1}),
    )

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402,F401  (re-exported)
