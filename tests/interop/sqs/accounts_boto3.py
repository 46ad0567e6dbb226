"""boto3: the access key names the account in queue URLs and in SQS and SNS
ARNs when it is a 12-digit number (otherwise 000000000000); any credentials
are accepted and every account sees the same queues and topics."""
import json

import boto3
from botocore.config import Config

from common import ENDPOINT, check, client, unique

ACCOUNT = "123456789012"


def clients_for(access_key):
    options = dict(endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=access_key,
                   aws_secret_access_key="secret", config=Config(retries={"max_attempts": 1}))
    return boto3.client("sqs", **options), boto3.client("sns", **options)


sqs, sns = clients_for(ACCOUNT)
default_sqs = client()
_, default_sns = clients_for("AKIAIOSFODNN7EXAMPLE")

dlq_name, name = unique("acct-dlq"), unique("acct")
dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
check(dlq_url.endswith(f"/{ACCOUNT}/{dlq_name}"), f"queue URL names the account: {dlq_url}")
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
check(dlq_arn == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{dlq_name}", f"queue ARN names the account: {dlq_arn}")
url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})["QueueUrl"]
policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
check(policy["deadLetterTargetArn"] == dlq_arn, f"RedrivePolicy in the account: {policy}")
sqs.send_message(QueueUrl=url, MessageBody="hello")
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["SenderId"])["Messages"][0]
check(got["Attributes"]["SenderId"] == ACCOUNT, f"SenderId: {got['Attributes']}")

# One namespace: the default account finds the same queue, under its own account id.
default_url = default_sqs.get_queue_url(QueueName=name)["QueueUrl"]
check(default_url.endswith(f"/000000000000/{name}"), f"default account URL: {default_url}")
default_arn = default_sqs.get_queue_attributes(QueueUrl=default_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
check(default_arn == f"arn:aws:sqs:us-east-1:000000000000:{name}", f"default ARN: {default_arn}")
default_sqs.delete_message(QueueUrl=default_url, ReceiptHandle=got["ReceiptHandle"])

topic = unique("acct-topic")
topic_arn = sns.create_topic(Name=topic)["TopicArn"]
check(topic_arn == f"arn:aws:sns:us-east-1:{ACCOUNT}:{topic}", f"topic ARN names the account: {topic_arn}")
check(sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]["Owner"] == ACCOUNT, "topic owner")
subscription_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=dlq_arn)["SubscriptionArn"]
check(subscription_arn.startswith(topic_arn + ":"), f"subscription ARN: {subscription_arn}")
listed = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
check([(entry["Owner"], entry["Endpoint"]) for entry in listed] == [(ACCOUNT, dlq_arn)], f"listed: {listed}")
sns.publish(TopicArn=topic_arn, Message="fanned")
delivered = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5)["Messages"][0]
check(json.loads(delivered["Body"])["TopicArn"] == topic_arn, f"the envelope names the account: {delivered['Body']}")
default_topics = [entry["TopicArn"] for entry in default_sns.list_topics()["Topics"]]
check(f"arn:aws:sns:us-east-1:000000000000:{topic}" in default_topics, f"the default account sees the topic: {default_topics}")
print("accounts: ok")
