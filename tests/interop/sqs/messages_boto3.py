"""boto3 against Conveyor's SQS API: send, receive, delete and their
batches; visibility timeouts and receipt handles; message attributes; long
polling. Waiting is done by long polls, never by sleeps."""
import threading
import time

from common import check, client, unique

sqs = client()
url = sqs.create_queue(QueueName=unique("work"))["QueueUrl"]

# Send, receive, delete.
sent = sqs.send_message(QueueUrl=url, MessageBody="hello")
check(sent["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592", f"{sent}")
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"]
check(len(got) == 1 and got[0]["Body"] == "hello" and got[0]["MessageId"] == sent["MessageId"], f"{got}")
check(got[0]["Attributes"]["ApproximateReceiveCount"] == "1", f"{got[0]}")
check(abs(int(got[0]["Attributes"]["SentTimestamp"]) - time.time() * 1000) < 60_000, f"{got[0]}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
check("Messages" not in sqs.receive_message(QueueUrl=url), "deleted message is gone")
try:
    sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")
    check(False, "a garbage receipt handle must be refused")
except sqs.exceptions.ReceiptHandleIsInvalid:
    pass

# Batches.
entries = [{"Id": f"m{i}", "MessageBody": f"batch-{i}"} for i in range(10)]
result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
check(len(result["Successful"]) == 10 and not result.get("Failed"), f"{result}")
received = []
for _ in range(10):
    received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    if len(received) >= 10:
        break
check(sorted(m["Body"] for m in received) == sorted(f"batch-{i}" for i in range(10)), f"{[m['Body'] for m in received]}")
deleted = sqs.delete_message_batch(
    QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
)
check(len(deleted["Successful"]) == 10 and not deleted.get("Failed"), f"{deleted}")
try:
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
    check(False, "duplicate batch ids must be refused")
except sqs.exceptions.BatchEntryIdsNotDistinct:
    pass
try:
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)])
    check(False, "eleven entries must be refused")
except sqs.exceptions.TooManyEntriesInBatchRequest:
    pass
# Each message is within the queue's 1 MiB MaximumMessageSize; together they are over SQS's 1 MiB batch payload.
big = "x" * 600_000
try:
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": big}, {"Id": "b", "MessageBody": big}])
    check(False, "a batch over 1 MiB must be refused")
except sqs.exceptions.BatchRequestTooLong:
    pass

# Message attributes round-trip, with the MD5 AWS would compute.
attributes = {
    "City": {"DataType": "String", "StringValue": "Any City"},
    "Count": {"DataType": "Number", "StringValue": "42"},
    "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\x02"},
}
sent = sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes=attributes)
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageAttributeNames=["All"])["Messages"][0]
check(got["MessageAttributes"] == attributes, f"{got['MessageAttributes']}")
check(got["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"], f"{got} vs {sent}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])
one = {"timestamp": {"DataType": "Number", "StringValue": "1493147359900"}}
sent = sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=one)
check(sent["MD5OfMessageAttributes"] == "235c5c510d26fb653d073faed50ae77c", f"{sent}")
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageAttributeNames=["Nothing"])["Messages"][0]
check("MessageAttributes" not in got, f"unrequested attributes are not returned: {got}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=got["ReceiptHandle"])

# Visibility timeout: not deleted within 1 s, the message comes back with
# ApproximateReceiveCount 2; the first receipt handle no longer deletes it.
sqs.send_message(QueueUrl=url, MessageBody="redeliver me")
first = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
check(first["Attributes"]["ApproximateReceiveCount"] == "1", f"{first}")
check("Messages" not in sqs.receive_message(QueueUrl=url), "invisible while its timeout runs")
started = time.monotonic()
second = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"][0]
waited = time.monotonic() - started
check(second["Body"] == "redeliver me" and second["Attributes"]["ApproximateReceiveCount"] == "2", f"{second}")
check(waited < 5, f"redelivered soon after the timeout, not at the end of the poll ({waited:.2f}s)")
check(second["ReceiptHandle"] != first["ReceiptHandle"], "a new receipt handle per receive")
sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])  # stale: succeeds, deletes nothing
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0)
third = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, AttributeNames=["All"])["Messages"][0]
check(third["Body"] == "redeliver me", "the stale handle did not delete the message")
check(third["Attributes"]["ApproximateReceiveCount"] == "3", f"{third}")
try:
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=10)
    check(False, "a stale handle cannot change visibility")
except sqs.exceptions.MessageNotInflight:
    pass
sqs.delete_message(QueueUrl=url, ReceiptHandle=third["ReceiptHandle"])
check("Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1), "deleted with the current handle")

# ChangeMessageVisibility to 0 makes it visible at once (no wait for the timeout).
sqs.send_message(QueueUrl=url, MessageBody="release me")
held = sqs.receive_message(QueueUrl=url, VisibilityTimeout=600, WaitTimeSeconds=5)["Messages"][0]
sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=held["ReceiptHandle"], VisibilityTimeout=0)
again = sqs.receive_message(QueueUrl=url)["Messages"][0]
check(again["Body"] == "release me", f"{again}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])

# Long polling: empty after WaitTimeSeconds when nothing comes...
started = time.monotonic()
empty = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
elapsed = time.monotonic() - started
check("Messages" not in empty and 0.9 <= elapsed < 3, f"empty long poll took {elapsed:.2f}s: {empty}")


# ...and back soon after a send from another thread.
def send_later(ready):
    ready.wait(10)
    client().send_message(QueueUrl=url, MessageBody="wake up")


ready = threading.Event()
sender = threading.Thread(target=send_later, args=(ready,))
sender.start()
started = time.monotonic()
timer = threading.Timer(0.2, ready.set)  # let the poll park first; correctness does not depend on it
timer.start()
woken = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
elapsed = time.monotonic() - started
sender.join()
check(woken["Messages"][0]["Body"] == "wake up", f"{woken}")
check(elapsed < 3, f"the long poll returned {elapsed:.2f}s after it started, not soon after the send")
print("messages: ok")
