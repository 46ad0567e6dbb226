"""boto3: a dead-letter queue's RedriveAllowPolicy (allowAll, denyAll, byQueue
with up to ten source ARNs) reads back and decides which queues may name it
in their RedrivePolicy, on CreateQueue and on SetQueueAttributes."""
import json

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()


def arn_of(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def refused(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    check(False, f"{call.__name__}({kwargs}) succeeded")


dlq_url = sqs.create_queue(QueueName=unique("guarded-dlq"))["QueueUrl"]
dlq_arn = arn_of(dlq_url)
check("RedriveAllowPolicy" not in sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"], "none by default")
account_prefix = dlq_arn.rsplit(":", 1)[0] + ":"
orders_name, billing_name = unique("orders"), unique("billing")
by_queue = {"redrivePermission": "byQueue", "sourceQueueArns": [account_prefix + orders_name]}
sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"RedriveAllowPolicy": json.dumps(by_queue)})
shown = json.loads(sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["RedriveAllowPolicy"])["Attributes"]["RedriveAllowPolicy"])
check(shown == by_queue, f"RedriveAllowPolicy read back: {shown}")

redrive = {"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})}
orders_url = sqs.create_queue(QueueName=orders_name, Attributes=redrive)["QueueUrl"]
code = refused(sqs.create_queue, QueueName=billing_name, Attributes=redrive)
check(code == "InvalidParameterValue", f"a source byQueue does not list: {code}")
billing_url = sqs.create_queue(QueueName=billing_name)["QueueUrl"]
code = refused(sqs.set_queue_attributes, QueueUrl=billing_url, Attributes=redrive)
check(code == "InvalidParameterValue", f"SetQueueAttributes of a source byQueue does not list: {code}")

sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "denyAll"})})
code = refused(sqs.create_queue, QueueName=unique("denied"), Attributes=redrive)
check(code == "InvalidParameterValue", f"denyAll: {code}")
sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={"RedriveAllowPolicy": json.dumps({"redrivePermission": "allowAll"})})
sqs.set_queue_attributes(QueueUrl=billing_url, Attributes=redrive)
sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"]
check(sorted(sources) == sorted([orders_url, billing_url]), f"sources: {sources}")

eleven = {"redrivePermission": "byQueue", "sourceQueueArns": [account_prefix + f"q{i}" for i in range(11)]}
for bad in [eleven, {"redrivePermission": "byQueue"}, {"redrivePermission": "sometimes"}]:
    code = refused(sqs.set_queue_attributes, QueueUrl=dlq_url, Attributes={"RedriveAllowPolicy": json.dumps(bad)})
    check(code == "InvalidParameterValue", f"{bad}: {code}")
code = refused(sqs.create_queue, QueueName=unique("bad"), Attributes={"RedriveAllowPolicy": "{not json"})
check(code == "InvalidParameterValue", f"not JSON: {code}")
print("redrive allow policy: ok")
