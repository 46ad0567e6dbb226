"""boto3: queue tags (at CreateQueue, TagQueue, UntagQueue, ListQueueTags),
ApproximateFirstReceiveTimestamp (the first receive's time, kept by later
receives) and ApproximateNumberOfMessagesDelayed."""
import time

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()
url = sqs.create_queue(QueueName=unique("tagged"), tags={"team": "orders", "env": "test"})["QueueUrl"]
check(sqs.list_queue_tags(QueueUrl=url).get("Tags") == {"team": "orders", "env": "test"}, "tags given at creation")
sqs.tag_queue(QueueUrl=url, Tags={"team": "billing", "cost-center": "42"})
sqs.untag_queue(QueueUrl=url, TagKeys=["env", "absent"])
tags = sqs.list_queue_tags(QueueUrl=url).get("Tags")
check(tags == {"team": "billing", "cost-center": "42"}, f"tags after TagQueue and UntagQueue: {tags}")
sqs.untag_queue(QueueUrl=url, TagKeys=["team", "cost-center"])
check("Tags" not in sqs.list_queue_tags(QueueUrl=url), "no tags left")
try:
    sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(51)})
    check(False, "51 tags were accepted")
except ClientError as error:
    check(error.response["Error"]["Code"] == "InvalidParameterValue", f"{error.response['Error']}")

# ApproximateFirstReceiveTimestamp: set by the first receive, kept by the next.
before_ms = int(time.time() * 1000)
sqs.send_message(QueueUrl=url, MessageBody="stamped")
first = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
stamp = int(first["Attributes"]["ApproximateFirstReceiveTimestamp"])
check(before_ms - 1000 <= stamp <= int(time.time() * 1000) + 1000, f"first receive at {stamp}, sent after {before_ms}")
check(stamp >= int(first["Attributes"]["SentTimestamp"]), f"{first['Attributes']}")
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
second = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
check(second["Attributes"]["ApproximateReceiveCount"] == "2", f"{second['Attributes']}")
check(int(second["Attributes"]["ApproximateFirstReceiveTimestamp"]) == stamp, f"kept across receives: {second['Attributes']}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])

# A delayed message counts as delayed, not visible, once a receive has looked.
sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
check("Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1), "a delayed message was received early")
counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check(counts["ApproximateNumberOfMessagesDelayed"] == "1" and counts["ApproximateNumberOfMessages"] == "0", f"{counts}")
print("tags: ok")
