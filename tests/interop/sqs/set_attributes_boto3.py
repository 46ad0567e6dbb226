"""boto3 SetQueueAttributes: attributes set later read back and change what
the queue does (the visibility timeout, the message size limit, the default
long-poll wait), a RedrivePolicy added later sends a message already received
too often to the dead-letter queue, an empty one removes it, and a queue
cannot turn FIFO."""
import json
import time

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()
url = sqs.create_queue(QueueName=unique("settable"))["QueueUrl"]
sqs.set_queue_attributes(
    QueueUrl=url,
    Attributes={
        "VisibilityTimeout": "1",
        "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "600",
        "ReceiveMessageWaitTimeSeconds": "2",
        "DelaySeconds": "0",
    },
)
attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
for name, want in [("VisibilityTimeout", "1"), ("MaximumMessageSize", "2048"), ("MessageRetentionPeriod", "600"),
                   ("ReceiveMessageWaitTimeSeconds", "2"), ("DelaySeconds", "0")]:
    check(attributes[name] == want, f"{name} read back as {attributes[name]}, not {want}")

# The default wait: a receive without WaitTimeSeconds long-polls for 2 s.
started = time.monotonic()
empty = sqs.receive_message(QueueUrl=url)
waited = time.monotonic() - started
check("Messages" not in empty and 1.5 <= waited < 10, f"default long poll waited {waited:.2f} s: {empty}")

# The size limit.
try:
    sqs.send_message(QueueUrl=url, MessageBody="x" * 3000)
    check(False, "a 3000-byte message passed a 2048-byte MaximumMessageSize")
except ClientError as error:
    check(error.response["Error"]["Code"] == "InvalidParameterValue", f"{error.response['Error']}")

# The visibility timeout: received again after 1 s, counted twice.
sqs.send_message(QueueUrl=url, MessageBody="retried")
first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
started = time.monotonic()
second = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"][0]
check(time.monotonic() - started < 5, "redelivered after the 1 s visibility timeout set later")
check(second["Attributes"]["ApproximateReceiveCount"] == "2", f"{second['Attributes']}")

# A RedrivePolicy added later: the message was received twice already, so
# with maxReceiveCount 2 its next receive moves it to the dead-letter queue.
dlq_url = sqs.create_queue(QueueName=unique("later-dlq"))["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
shown = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
check(shown["deadLetterTargetArn"] == dlq_arn and int(shown["maxReceiveCount"]) == 2, f"RedrivePolicy read back: {shown}")
check(sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"] == [url], "the DLQ names its new source")
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
third = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
check("Messages" not in third, f"received past maxReceiveCount: {third}")
moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5).get("Messages", [])
check([message["Body"] for message in moved] == ["retried"], f"dead-letter queue holds {moved}")

# An empty RedrivePolicy removes it.
sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check("RedrivePolicy" not in attributes, f"RedrivePolicy still there: {attributes}")

# What cannot be set.
for bad, code in [({"FifoQueue": "true"}, "InvalidAttributeValue"), ({"VisibilityTimeout": "-1"}, "InvalidAttributeValue"),
                  ({"Nonsense": "1"}, "InvalidAttributeName")]:
    try:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=bad)
        check(False, f"SetQueueAttributes({bad}) must fail")
    except ClientError as error:
        check(error.response["Error"]["Code"] == code, f"{bad}: {error.response['Error']}")
print("set attributes: ok")
