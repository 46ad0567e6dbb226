"""boto3 against the SQS and SNS doors with SigV4 checked against the
user store: the right keys work; a wrong secret raises SignatureDoesNotMatch;
a user without write on a queue gets AccessDenied (SNS: AuthorizationError).
With `never` as the first argument the broker runs with anonymous = "never"
and an unknown key raises InvalidClientTokenId; otherwise an unknown key
from loopback is the anonymous identity."""
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from common import HTTP, check, unique

mode = sys.argv[1]
ENDPOINT = f"http://{HTTP}"


def client(service, key, secret):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


alice_sqs = client("sqs", "AKIAALICE0000000000", "alice-secret")
url = alice_sqs.create_queue(QueueName=unique("signed"))["QueueUrl"]
alice_sqs.send_message(QueueUrl=url, MessageBody="signed by alice")
received = alice_sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
check([m["Body"] for m in received] == ["signed by alice"], f"received {received}")

alice_sns = client("sns", "AKIAALICE0000000000", "alice-secret")
topic = alice_sns.create_topic(Name=unique("signed-topic"))["TopicArn"]
alice_sns.publish(TopicArn=topic, Message="signed by alice")

wrong = client("sqs", "AKIAALICE0000000000", "not-alice-secret")
code = error_code(lambda: wrong.send_message(QueueUrl=url, MessageBody="forged"))
check(code == "SignatureDoesNotMatch", f"wrong secret on SQS: {code}")
code = error_code(lambda: client("sns", "AKIAALICE0000000000", "nope").publish(TopicArn=topic, Message="forged"))
check(code == "SignatureDoesNotMatch", f"wrong secret on SNS: {code}")

bob_sqs = client("sqs", "AKIABOB000000000000", "bob-secret")
code = error_code(lambda: bob_sqs.send_message(QueueUrl=url, MessageBody="bob has no write"))
check(code == "AccessDenied", f"bob's send: {code}")
code = error_code(lambda: client("sns", "AKIABOB000000000000", "bob-secret").publish(TopicArn=topic, Message="no"))
check(code == "AuthorizationError", f"bob's publish: {code}")

stranger = client("sqs", "AKIAUNKNOWN00000000", "whatever")
if mode == "never":
    code = error_code(lambda: stranger.list_queues())
    check(code == "InvalidClientTokenId", f"unknown key with anonymous = never: {code}")
else:
    stranger.send_message(QueueUrl=url, MessageBody="anonymous from loopback")
print("SigV4 with boto3 ok")
