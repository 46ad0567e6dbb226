"""boto3 across a broker restart, in two runs on the same data directory.
`before STATE`: creates a standard queue (attributes set at creation and
later, a RedrivePolicy, a tag) and a FIFO queue, sends messages, receives one of
each without deleting it, deletes one, and writes what it expects to STATE.
`after STATE` (against the restarted broker): the queues and their attributes
are intact, every message not deleted comes back (the one in flight with
ApproximateReceiveCount 2), FIFO groups in order with their sequence numbers,
a duplicate within five minutes is still recognized, and a receipt handle from before the restart deletes nothing."""
import json
import sys

from common import check, client, unique

sqs = client()
phase, state_path = sys.argv[1], sys.argv[2]
KEPT = ["VisibilityTimeout", "ReceiveMessageWaitTimeSeconds", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize",
        "RedrivePolicy", "QueueArn", "CreatedTimestamp", "FifoQueue", "ContentBasedDeduplication"]


def kept(url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {name: attributes.get(name) for name in KEPT}


def receive_all(url, expected):
    """Receives until `expected` messages came (bounded), without deleting."""
    got = []
    for _ in range(expected + 5):
        if len(got) >= expected:
            break
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2, AttributeNames=["All"]).get("Messages", [])
    return got


if phase == "before":
    dlq = sqs.create_queue(QueueName=unique("restart-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    standard_name = unique("restart")
    standard = sqs.create_queue(QueueName=standard_name, Attributes={"VisibilityTimeout": "40", "MaximumMessageSize": "4096"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=standard, Tags={"team": "orders"})
    sqs.set_queue_attributes(QueueUrl=standard, Attributes={
        "VisibilityTimeout": "45",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
    })
    sent = [sqs.send_message(QueueUrl=standard, MessageBody=f"s{i}")["MessageId"] for i in range(2)]
    batch = sqs.send_message_batch(QueueUrl=standard, Entries=[{"Id": str(i), "MessageBody": f"s{i}"} for i in range(2, 5)])
    check(len(batch["Successful"]) == 3, f"batch {batch}")
    in_flight = sqs.receive_message(QueueUrl=standard, WaitTimeSeconds=5)["Messages"][0]
    deleted = sqs.receive_message(QueueUrl=standard, WaitTimeSeconds=5)["Messages"][0]
    sqs.delete_message(QueueUrl=standard, ReceiptHandle=deleted["ReceiptHandle"])

    fifo_name = unique("restart") + ".fifo"
    fifo = sqs.create_queue(QueueName=fifo_name, Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    sequence = {}
    message_ids = {}
    for body, group in [("f0", "g1"), ("f1", "g1"), ("f2", "g2"), ("f3", "g1")]:
        answer = sqs.send_message(QueueUrl=fifo, MessageBody=body, MessageGroupId=group)
        sequence[body], message_ids[body] = answer["SequenceNumber"], answer["MessageId"]
    fifo_head = sqs.receive_message(QueueUrl=fifo, MaxNumberOfMessages=1)["Messages"][0]
    check(fifo_head["Body"] == "f0", f"FIFO head {fifo_head['Body']}")

    with open(state_path, "w") as state:
        json.dump({
            "standard": standard_name, "fifo": fifo_name,
            "standard_attributes": kept(standard), "fifo_attributes": kept(fifo),
            "in_flight": in_flight["Body"], "stale_handle": in_flight["ReceiptHandle"], "deleted": deleted["Body"],
            "sequence": sequence, "message_ids": message_ids,
        }, state)
    print("before: ok")
else:
    with open(state_path) as state:
        state = json.load(state)
    standard = sqs.get_queue_url(QueueName=state["standard"])["QueueUrl"]
    fifo = sqs.get_queue_url(QueueName=state["fifo"])["QueueUrl"]
    check(kept(standard) == state["standard_attributes"], f"standard attributes {kept(standard)} vs {state['standard_attributes']}")
    check(kept(fifo) == state["fifo_attributes"], f"FIFO attributes {kept(fifo)} vs {state['fifo_attributes']}")
    check(sqs.list_queue_tags(QueueUrl=standard).get("Tags") == {"team": "orders"}, "tags survive the restart")
    count = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    check(count["ApproximateNumberOfMessages"] == "4", f"the in-flight message is available again: {count}")

    got = receive_all(standard, 4)
    counts = {message["Body"]: message["Attributes"]["ApproximateReceiveCount"] for message in got}
    want = {f"s{i}": "1" for i in range(5) if f"s{i}" != state["deleted"]}
    want[state["in_flight"]] = "2"
    check(counts == want, f"standard queue after the restart: {counts}, want {want}")
    # The receipt handle from before the restart names a receive that is gone.
    sqs.delete_message(QueueUrl=standard, ReceiptHandle=state["stale_handle"])
    held = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    check(held["ApproximateNumberOfMessagesNotVisible"] == "4", f"a stale handle deleted a message received again: {held}")

    # The deduplication window is rebuilt from the log: a duplicate sent
    # after the restart answers as the original and is not enqueued.
    again = sqs.send_message(QueueUrl=fifo, MessageBody="f2", MessageGroupId="g2")
    check(again["MessageId"] == state["message_ids"]["f2"], f"duplicate across the restart: {again}")
    check(again["SequenceNumber"] == state["sequence"]["f2"], f"duplicate across the restart: {again}")
    fifo_got = receive_all(fifo, 4)
    bodies = [message["Body"] for message in fifo_got]
    check(bodies == ["f0", "f1", "f2", "f3"], f"FIFO queue after the restart: {bodies}")
    check(fifo_got[0]["Attributes"]["ApproximateReceiveCount"] == "2", f"f0 was in flight: {fifo_got[0]['Attributes']}")
    for message in fifo_got:
        check(message["Attributes"]["SequenceNumber"] == state["sequence"][message["Body"]], f"sequence number of {message}")
    print("after: ok")
