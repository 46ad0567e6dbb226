"""boto3 and FIFO queues: names and attributes, the parameters a FIFO send
needs, strict order within a message group, a group blocked while one of its
messages is in flight (released by a delete or an expired visibility
timeout) while other groups go on, and deduplication by id and by content
(a duplicate answers with the original MessageId and SequenceNumber and is
not enqueued again)."""
import json
import time

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()


def error_code(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


# Names and attributes.
code = error_code(sqs.create_queue, QueueName=unique("plain") + ".fifo")
check(code == "InvalidParameterValue", f".fifo name without FifoQueue: {code}")
code = error_code(sqs.create_queue, QueueName=unique("plain"), Attributes={"FifoQueue": "true"})
check(code == "InvalidParameterValue", f"FifoQueue without a .fifo name: {code}")
name = unique("orders") + ".fifo"
url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
check(url.endswith("/" + name), f"queue URL {url}")
attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
check(attributes["FifoQueue"] == "true" and attributes["ContentBasedDeduplication"] == "false", f"attributes {attributes}")
again = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
check(again == url, "CreateQueue of the same FIFO queue is idempotent")

# What a send to a FIFO queue must carry.
code = error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
check(code == "MissingParameter", f"no MessageGroupId: {code}")
code = error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g")
check(code == "InvalidParameterValue", f"no MessageDeduplicationId and no content-based deduplication: {code}")
code = error_code(sqs.send_message, QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d", DelaySeconds=5)
check(code == "InvalidParameterValue", f"per-message DelaySeconds: {code}")

# Two groups, interleaved.
sent = {}
sequence_numbers = []
for body, group in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("a3", "A"), ("b2", "B")]:
    answer = sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId="id-" + body)
    sent[body] = answer
    sequence_numbers.append(int(answer["SequenceNumber"]))
    check(len(answer["SequenceNumber"]) >= 20, f"SequenceNumber {answer['SequenceNumber']}")
check(sequence_numbers == sorted(sequence_numbers) and len(set(sequence_numbers)) == 5, f"increasing: {sequence_numbers}")

# A duplicate within the window: accepted, answered as the original, not enqueued.
duplicate = sqs.send_message(QueueUrl=url, MessageBody="a1 again", MessageGroupId="A", MessageDeduplicationId="id-a1")
check(duplicate["MessageId"] == sent["a1"]["MessageId"], f"duplicate MessageId {duplicate} vs {sent['a1']}")
check(duplicate["SequenceNumber"] == sent["a1"]["SequenceNumber"], "duplicate SequenceNumber")
batch = sqs.send_message_batch(
    QueueUrl=url,
    Entries=[
        {"Id": "dup", "MessageBody": "b1", "MessageGroupId": "B", "MessageDeduplicationId": "id-b1"},
        {"Id": "twice", "MessageBody": "c1", "MessageGroupId": "C", "MessageDeduplicationId": "id-c1"},
        {"Id": "twice-again", "MessageBody": "c1", "MessageGroupId": "C", "MessageDeduplicationId": "id-c1"},
    ],
)
check(not batch.get("Failed"), f"batch failures {batch}")
by_id = {entry["Id"]: entry for entry in batch["Successful"]}
check(by_id["dup"]["MessageId"] == sent["b1"]["MessageId"], f"batch duplicate of an earlier send: {by_id['dup']}")
check(by_id["twice"]["MessageId"] == by_id["twice-again"]["MessageId"], f"duplicate inside a batch: {by_id}")
check(by_id["twice"]["SequenceNumber"] == by_id["twice-again"]["SequenceNumber"], "duplicate inside a batch: SequenceNumber")


def receive(maximum=10, wait=0, visibility=None):
    kwargs = {"QueueUrl": url, "MaxNumberOfMessages": maximum, "WaitTimeSeconds": wait, "MessageSystemAttributeNames": ["All"]}
    if visibility is not None:
        kwargs["VisibilityTimeout"] = visibility
    return sqs.receive_message(**kwargs).get("Messages", [])


def bodies(messages):
    return [message["Body"] for message in messages]


# The head of A, alone; then A is blocked while B and C go on.
first = receive(maximum=1)
check(bodies(first) == ["a1"], f"first receive {bodies(first)}")
system = first[0]["Attributes"]
check(system["MessageGroupId"] == "A" and system["MessageDeduplicationId"] == "id-a1", f"system attributes {system}")
check(system["SequenceNumber"] == sent["a1"]["SequenceNumber"], f"SequenceNumber on receive {system}")
others = receive()
check(bodies(others) == ["b1", "b2", "c1"], f"other groups while A is in flight: {bodies(others)}")
check(receive() == [], "every group has a message in flight: nothing to receive")

# Deleting A's head releases A, in order.
sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
rest_of_a = receive(visibility=1)
check(bodies(rest_of_a) == ["a2", "a3"], f"A after its head was deleted: {bodies(rest_of_a)}")
for message in others:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

# An expired visibility timeout releases A again, from a2, counted twice.
started = time.monotonic()
redelivered = receive(wait=10)
check(bodies(redelivered) == ["a2", "a3"], f"after the visibility timeout: {bodies(redelivered)}")
check(time.monotonic() - started < 5, "redelivered soon after the 1 s visibility timeout")
check([m["Attributes"]["ApproximateReceiveCount"] for m in redelivered] == ["2", "2"], f"{redelivered}")
for message in redelivered:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
check(receive() == [], "the queue is empty")

# Content-based deduplication: the body's SHA-256 is the id.
content_url = sqs.create_queue(
    QueueName=unique("content") + ".fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
)["QueueUrl"]
one = sqs.send_message(QueueUrl=content_url, MessageBody="same", MessageGroupId="g")
two = sqs.send_message(QueueUrl=content_url, MessageBody="same", MessageGroupId="g")
other = sqs.send_message(QueueUrl=content_url, MessageBody="different", MessageGroupId="g")
check(one["MessageId"] == two["MessageId"] and other["MessageId"] != one["MessageId"], f"{one} {two} {other}")
got = sqs.receive_message(QueueUrl=content_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
check(bodies(got) == ["same", "different"], f"content-deduplicated queue holds {bodies(got)}")

# PurgeQueue takes the waiting messages of a group whose head is in flight too.
sqs.send_message(QueueUrl=content_url, MessageBody="more", MessageGroupId="g")
sqs.purge_queue(QueueUrl=content_url)
counts = sqs.get_queue_attributes(QueueUrl=content_url, AttributeNames=["All"])["Attributes"]
check(counts["ApproximateNumberOfMessages"] == "0" and counts["ApproximateNumberOfMessagesNotVisible"] == "2", f"after purge {counts}")

# A FIFO queue's dead-letter queue is FIFO, and a moved message keeps its group.
dlq_url = sqs.create_queue(QueueName=unique("fifo-dlq") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
code = error_code(sqs.create_queue, QueueName=unique("standard-source"), Attributes={"RedrivePolicy": policy})
check(code == "InvalidAttributeValue", f"a standard queue with a FIFO dead-letter queue: {code}")
source_url = sqs.create_queue(QueueName=unique("fifo-source") + ".fifo", Attributes={"FifoQueue": "true", "RedrivePolicy": policy})["QueueUrl"]
sqs.send_message(QueueUrl=source_url, MessageBody="poison", MessageGroupId="p", MessageDeduplicationId="poison")
received = sqs.receive_message(QueueUrl=source_url, VisibilityTimeout=0)["Messages"]
check(bodies(received) == ["poison"], f"{received}")
check("Messages" not in sqs.receive_message(QueueUrl=source_url, WaitTimeSeconds=1), "received past maxReceiveCount")
moved = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=5, MessageSystemAttributeNames=["All"])["Messages"]
check(bodies(moved) == ["poison"] and moved[0]["Attributes"]["MessageGroupId"] == "p", f"dead-lettered {moved}")
print("fifo: ok")
