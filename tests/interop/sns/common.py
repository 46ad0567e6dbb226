"""Shared helpers for the SNS interop scripts: boto3 SNS and SQS clients for
the broker under test, and a bounded receive loop."""
import os
import sys
import time

import boto3
from botocore.config import Config

ENDPOINT = "http://" + os.environ.get("CONVEYOR_HTTP", "127.0.0.1:8080")


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(read_timeout=30, retries={"max_attempts": 1}),
    )


def receive_all(sqs, queue_url, expected, deadline_s=10):
    """Receives (and deletes) until `expected` messages came or the deadline
    passed, then makes sure nothing more arrives within one short poll."""
    messages = []
    deadline = time.monotonic() + deadline_s
    while len(messages) < expected and time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for message in response.get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    extra = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    check(not extra, f"no message beyond the {expected} expected in {queue_url}, got {extra}")
    return messages


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, unique  # noqa: E402,F401  (re-exported)
