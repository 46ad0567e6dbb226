"""boto3: a delayed message is held back by the broker's core, across a
SIGKILL, in two runs on the same data directory.
`before STATE`: a queue with a RedrivePolicy of maxReceiveCount 1 gets a
message sent with DelaySeconds; a receive before the delay is over gets
nothing; STATE records the queue URLs and when the delay ends.
`after STATE` (against the broker restarted after a SIGKILL): a receive still
before the delay gets nothing (the not-before time is in the record); the
message is then received once, with ApproximateReceiveCount 1, and never
dead-lettered."""
import json
import sys
import time

from common import check, client, unique

DELAY_SECONDS = 6

sqs = client()
phase, state_path = sys.argv[1], sys.argv[2]

if phase == "before":
    dlq_url = sqs.create_queue(QueueName=unique("delay-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=unique("delay"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})})["QueueUrl"]
    sent_at = time.time()
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=DELAY_SECONDS)
    for _ in range(3):
        early = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0, AttributeNames=["All"])
        check("Messages" not in early, f"a delayed message was received before its delay: {early}")
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    check(attributes["ApproximateNumberOfMessagesDelayed"] == "1", f"the message counts as delayed: {attributes}")
    with open(state_path, "w") as state:
        json.dump({"url": url, "dlq_url": dlq_url, "due": sent_at + DELAY_SECONDS}, state)
    print("delay before restart: ok")
else:
    with open(state_path) as state:
        expected = json.load(state)
    url, dlq_url = expected["url"], expected["dlq_url"]
    if time.time() < expected["due"] - 1:
        early = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        check("Messages" not in early, f"the delay did not survive the restart: {early}")
    due = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=DELAY_SECONDS + 5, AttributeNames=["All"]).get("Messages", [])
    check([message["Body"] for message in due] == ["delayed"], f"the delayed message is received once due: {due}")
    check(due[0]["Attributes"]["ApproximateReceiveCount"] == "1", f"the early receives did not count: {due[0]['Attributes']}")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=due[0]["ReceiptHandle"])
    dead = sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1)
    check("Messages" not in dead, f"a delayed message was dead-lettered for an early receive: {dead}")
    print("delay after restart: ok")
