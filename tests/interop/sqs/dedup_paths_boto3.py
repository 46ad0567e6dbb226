"""boto3 and the admin API: a FIFO queue's five-minute deduplication window
holds for every way into the queue — SNS FIFO topic deliveries, admin API
publishes with a deduplication id, and SQS sends — because the core checks
it; a later SQS send of an id first seen over SNS answers with the SNS
delivery's MessageId."""
import json
import os
import urllib.request

import boto3
from botocore.config import Config

from common import ENDPOINT, check, client, unique

sqs = client()
sns = boto3.client("sns", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id="test",
                   aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))

name = unique("dedup") + ".fifo"
url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
topic_arn = sns.create_topic(Name=unique("dedup") + ".fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
for _ in range(2):
    sns.publish(TopicArn=topic_arn, Message="over sns", MessageGroupId="sns", MessageDeduplicationId="sns-1")


def admin_publish(value):
    request = urllib.request.Request(
        f"{ENDPOINT}/api/v1/queues/{name}/messages",
        data=json.dumps({"value": value, "routing_key": "admin", "headers": {"conveyor.deduplication-id": "admin-1"}}).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        check(response.status == 201, f"admin publish: {response.status}")


admin_publish("over the admin api")
admin_publish("over the admin api, again")

received = {}
for _ in range(10):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
    if not got:
        break
    for message in got:
        check(message["Body"] not in received, f"received twice: {message['Body']}")
        received[message["Body"]] = message
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
check(sorted(received) == ["over sns", "over the admin api"], f"each id once: {sorted(received)}")
check(received["over sns"]["Attributes"]["MessageDeduplicationId"] == "sns-1", f"{received['over sns']['Attributes']}")

again = sqs.send_message(QueueUrl=url, MessageBody="over sqs", MessageGroupId="sns", MessageDeduplicationId="sns-1")
check(again["MessageId"] == received["over sns"]["MessageId"], f"an SQS duplicate of the SNS delivery: {again}")
check("Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1), "the duplicate was not enqueued")
fresh = sqs.send_message(QueueUrl=url, MessageBody="new", MessageGroupId="sqs", MessageDeduplicationId=os.urandom(4).hex())
check(fresh["MessageId"] != again["MessageId"], "a new id is a new message")
print("dedup paths: ok")
