"""boto3: MessageRetentionPeriod (60 s to 14 days, default 4 days) is taken
on CreateQueue and SetQueueAttributes and read back; out-of-range values get
InvalidAttributeValue. (That a message past retention is removed, never
received and not dead-lettered is the core's rule, tested there with a
controlled clock rather than a 60 s wait.)"""
from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()


def retention(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])["Attributes"]["MessageRetentionPeriod"]


default_url = sqs.create_queue(QueueName=unique("kept"))["QueueUrl"]
check(retention(default_url) == "345600", f"default: {retention(default_url)}")
url = sqs.create_queue(QueueName=unique("short"), Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
check(retention(url) == "60", f"created with 60: {retention(url)}")
sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": "1209600"})
check(retention(url) == "1209600", f"set to 14 days: {retention(url)}")
for bad in ["59", "1209601", "soon"]:
    try:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": bad})
        check(False, f"MessageRetentionPeriod {bad} was accepted")
    except ClientError as error:
        check(error.response["Error"]["Code"] == "InvalidAttributeValue", f"{bad}: {error.response['Error']}")
sqs.send_message(QueueUrl=url, MessageBody="young")
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
check([message["Body"] for message in got] == ["young"], f"a message within retention is received: {got}")
print("retention: ok")
