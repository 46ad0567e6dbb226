"""boto3: a queue with a RedrivePolicy moves a message to its dead-letter
queue once it has been received maxReceiveCount times; the policy reads
back and ListDeadLetterSourceQueues names the source; a delayed message
that a receive tries too early does not count that receive (received once,
never dead-lettered at maxReceiveCount 1); a policy naming a missing queue
is refused."""
import json

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()
dlq_name = unique("orders-dlq")
dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
url = sqs.create_queue(QueueName=unique("orders"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
shown = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
check(shown["deadLetterTargetArn"] == dlq_arn and int(shown["maxReceiveCount"]) == 2, f"RedrivePolicy read back: {shown}")

sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url)["queueUrls"]
check(sources == [url], f"dead-letter source queues of the DLQ: {sources}")

sqs.send_message(QueueUrl=url, MessageBody="poison")
for attempt in (1, 2):
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
    check(got["Attributes"]["ApproximateReceiveCount"] == str(attempt), f"receive {attempt}: {got}")
    # Give it back at once, as a failed consumer's visibility timeout would.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"], VisibilityTimeout=0)
third = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
check("Messages" not in third, f"a message past maxReceiveCount was received again: {third}")
moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5)["Messages"]
check([message["Body"] for message in moved] == ["poison"], f"dead-letter queue holds {moved}")

# A delayed message that a receive tries too early was not delivered then:
# with maxReceiveCount 1 it is received once, later, and never dead-lettered.
early_dlq_url = sqs.create_queue(QueueName=unique("early-dlq"))["QueueUrl"]
early_dlq_arn = sqs.get_queue_attributes(QueueUrl=early_dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
early_url = sqs.create_queue(QueueName=unique("early"), Attributes={
    "RedrivePolicy": json.dumps({"deadLetterTargetArn": early_dlq_arn, "maxReceiveCount": 1})})["QueueUrl"]
sqs.send_message(QueueUrl=early_url, MessageBody="delayed", DelaySeconds=2)
too_early = sqs.receive_message(QueueUrl=early_url, WaitTimeSeconds=0)
check("Messages" not in too_early, f"a delayed message was received before its delay: {too_early}")
due = sqs.receive_message(QueueUrl=early_url, WaitTimeSeconds=10, AttributeNames=["All"]).get("Messages", [])
check([message["Body"] for message in due] == ["delayed"], f"the delayed message is received once due: {due}")
check(due[0]["Attributes"]["ApproximateReceiveCount"] == "1", f"the early receive did not count: {due[0]['Attributes']}")
sqs.delete_message(QueueUrl=early_url, ReceiptHandle=due[0]["ReceiptHandle"])
dead = sqs.receive_message(QueueUrl=early_dlq_url, WaitTimeSeconds=1)
check("Messages" not in dead, f"a delayed message was dead-lettered for an early receive: {dead}")

try:
    missing = json.dumps({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:" + unique("nowhere"), "maxReceiveCount": 1})
    sqs.create_queue(QueueName=unique("broken"), Attributes={"RedrivePolicy": missing})
    check(False, "a RedrivePolicy naming a missing queue was accepted")
except ClientError as error:
    check(error.response["Error"]["Code"] in ("InvalidAttributeValue", "InvalidParameterValue"), f"{error.response['Error']}")
print("redrive: ok")
