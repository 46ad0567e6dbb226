"""boto3 against Conveyor's SQS API: queue lifecycle, attributes, modeled
errors, and bad input that must get an AWS-shaped error, never a 500."""
import json
import urllib.error
import urllib.request

from common import ENDPOINT, check, client, unique

sqs = client()

# Create, idempotently; different attributes are refused.
name = unique("orders")
url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
check(url.endswith(f"/000000000000/{name}"), f"queue URL {url}")
again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
check(again == url, "CreateQueue with the same attributes returns the same URL")
try:
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "6"})
    check(False, "CreateQueue with different attributes must fail")
except sqs.exceptions.QueueNameExists:
    pass

# Get the URL, list by prefix (with pagination).
check(sqs.get_queue_url(QueueName=name)["QueueUrl"] == url, "GetQueueUrl")
other = unique("orders")
sqs.create_queue(QueueName=other)
unrelated = unique("billing")
sqs.create_queue(QueueName=unrelated)
prefix = name.split("-")[0]
listed = sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
check(any(u.endswith("/" + name) for u in listed) and any(u.endswith("/" + other) for u in listed), f"listed {listed}")
check(not any(u.endswith("/" + unrelated) for u in listed), f"prefix filters: {listed}")
first = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1)
check(len(first["QueueUrls"]) == 1 and "NextToken" in first, f"first page {first}")
second = sqs.list_queues(QueueNamePrefix=prefix, MaxResults=1, NextToken=first["NextToken"])
check(len(second["QueueUrls"]) == 1 and second["QueueUrls"] != first["QueueUrls"], f"second page {second}")

# Attributes.
attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check(attributes["VisibilityTimeout"] == "5", f"attributes {attributes}")
check(attributes["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}", f"arn {attributes}")
check(attributes["ApproximateNumberOfMessages"] == "0", f"counts {attributes}")
check(int(attributes["CreatedTimestamp"]) > 1_600_000_000, f"created {attributes}")
sqs.send_message(QueueUrl=url, MessageBody="one")
sqs.send_message(QueueUrl=url, MessageBody="two")
counts = sqs.get_queue_attributes(
    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
)["Attributes"]
check(counts == {"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "0"}, f"counts {counts}")
sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check(counts["ApproximateNumberOfMessages"] == "1" and counts["ApproximateNumberOfMessagesNotVisible"] == "1", f"{counts}")

# Purge drops what is available.
sqs.purge_queue(QueueUrl=url)
counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
check(counts["ApproximateNumberOfMessages"] == "0", f"after purge {counts}")

# Delete; afterwards the queue does not exist, as boto3's modeled exception.
sqs.delete_queue(QueueUrl=url)
try:
    sqs.get_queue_url(QueueName=name)
    check(False, "GetQueueUrl of a deleted queue must fail")
except sqs.exceptions.QueueDoesNotExist as error:
    check(error.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue", f"{error.response}")
try:
    sqs.send_message(QueueUrl=url, MessageBody="x")
    check(False, "SendMessage to a deleted queue must fail")
except sqs.exceptions.QueueDoesNotExist:
    pass

# Invalid input gets AWS errors.
for bad in ["has space", "x" * 81, "q.fifo"]:
    try:
        sqs.create_queue(QueueName=bad)
        check(False, f"CreateQueue({bad!r}) must fail")
    except sqs.exceptions.ClientError as error:
        check(error.response["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{bad}: {error.response}")


def raw(body, target="AmazonSQS.ListQueues"):
    request = urllib.request.Request(
        ENDPOINT + "/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": target},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


status, headers, body = raw(b"{not json")
check(status == 400 and "SerializationException" in body["__type"], f"malformed JSON: {status} {body}")
status, headers, body = raw(b'{"QueueName": 5}', "AmazonSQS.CreateQueue")
check(status == 400 and "__type" in body, f"wrong type: {status} {body}")
status, headers, body = raw(b"{}", "AmazonSQS.NoSuchAction")
check(status == 400 and "UnknownOperation" in body["__type"], f"unknown action: {status} {body}")
status, headers, body = raw(b"x" * (3 * 1024 * 1024))
check(status == 413 and "__type" in body, f"oversized: {status} {body}")
status, headers, body = raw(b'{"QueueUrl": "http://h/000000000000/nope"}', "AmazonSQS.GetQueueAttributes")
check(status == 400 and body["__type"] == "com.amazonaws.sqs#QueueDoesNotExist", f"{status} {body}")
check(headers.get("x-amzn-query-error") == "AWS.SimpleQueueService.NonExistentQueue;Sender", f"{headers}")
print("queues: ok")
