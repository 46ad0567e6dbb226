"""boto3: StartMessageMoveTask moves a dead-letter queue's messages back —
each to the queue it was dead-lettered from, or to a DestinationArn, at most
MaxNumberOfMessagesPerSecond — and ListMessageMoveTasks and
CancelMessageMoveTask follow a task; one task runs per source, the source
must be a dead-letter queue, and bad requests get SQS's modeled errors."""
import json
import time

from botocore.exceptions import ClientError

from common import check, client, unique

sqs = client()
DEADLINE_S = 20


def arn_of(url):
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def count(url):
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def error_of(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"]["Message"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    check(False, f"{call.__name__}({kwargs}) succeeded")


def dead_letter(url, bodies, dlq_url, expected):
    """Sends the bodies and receives them twice: past maxReceiveCount 1 they move to the DLQ."""
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    deadline = time.monotonic() + DEADLINE_S
    while count(dlq_url) < expected:
        check(time.monotonic() < deadline, f"messages of {url} did not reach the DLQ")
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)


def drain(url):
    bodies = []
    for _ in range(20):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not got:
            break
        for message in got:
            check(message["Attributes"]["ApproximateReceiveCount"] == "1", f"a moved message is received afresh: {message}")
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return sorted(bodies)


def wait_for(dlq_arn, status):
    deadline = time.monotonic() + DEADLINE_S
    while True:
        task = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
        if task["Status"] == status:
            return task
        check(time.monotonic() < deadline, f"the task never reached {status}: {task}")
        time.sleep(0.05)


dlq_url = sqs.create_queue(QueueName=unique("moves-dlq"))["QueueUrl"]
dlq_arn = arn_of(dlq_url)
policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
orders_url = sqs.create_queue(QueueName=unique("orders"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
billing_url = sqs.create_queue(QueueName=unique("billing"), Attributes={"RedrivePolicy": policy})["QueueUrl"]
elsewhere_url = sqs.create_queue(QueueName=unique("elsewhere"))["QueueUrl"]

# Errors, as SQS answers them.
code = error_of(sqs.start_message_move_task, SourceArn=arn_of(orders_url))
check(code == ("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.", 400), f"not a DLQ: {code}")
missing = dlq_arn.rsplit(":", 1)[0] + ":" + unique("missing")
code = error_of(sqs.start_message_move_task, SourceArn=missing)
check(code[0] == "ResourceNotFoundException" and code[2] == 404, f"unknown source: {code}")
code = error_of(sqs.start_message_move_task, SourceArn=dlq_arn, DestinationArn=missing)
check(code[0] == "ResourceNotFoundException" and "DestinationArn" in code[1], f"unknown destination: {code}")
code = error_of(sqs.start_message_move_task, SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
check(code[0] == "InvalidParameterValue", f"rate out of range: {code}")
code = error_of(sqs.cancel_message_move_task, TaskHandle="foobared")
check(code[:2] == ("InvalidParameterValue", "Value for parameter TaskHandle is invalid."), f"bad handle: {code}")
code = error_of(sqs.list_message_move_tasks, SourceArn=dlq_arn, MaxResults=11)
check(code[0] == "InvalidParameterValue", f"MaxResults 11: {code}")
check(sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"] == [], "no tasks yet")

# Six dead letters; a task at one message a second to a fixed destination, cancelled while it runs.
dead_letter(orders_url, [f"order-{i}" for i in range(4)], dlq_url, 4)
dead_letter(billing_url, ["invoice-0", "invoice-1"], dlq_url, 6)
handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=arn_of(elsewhere_url), MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
running = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]
check(len(running) == 1, f"one task listed: {running}")
running = running[0]
check(running["Status"] == "RUNNING" and running["TaskHandle"] == handle, f"running task: {running}")
check(running["SourceArn"] == dlq_arn and running["DestinationArn"] == arn_of(elsewhere_url), f"arns: {running}")
check(running["MaxNumberOfMessagesPerSecond"] == 1 and running["ApproximateNumberOfMessagesToMove"] == 6, f"{running}")
check(abs(running["StartedTimestamp"] - time.time() * 1000) < 60_000, f"StartedTimestamp in ms: {running}")
code = error_of(sqs.start_message_move_task, SourceArn=dlq_arn)
check(code[0] == "InvalidParameterValue" and "already a task running" in code[1], f"second task: {code}")
cancelled = sqs.cancel_message_move_task(TaskHandle=handle)
check(cancelled["ApproximateNumberOfMessagesMoved"] < 6, f"cancel answer: {cancelled}")
task = wait_for(dlq_arn, "CANCELLED")
check("TaskHandle" not in task, f"only a running task shows its handle: {task}")
moved = drain(elsewhere_url)
check(len(moved) == task["ApproximateNumberOfMessagesMoved"] < 6, f"moved {moved}, task {task}")
code = error_of(sqs.cancel_message_move_task, TaskHandle=handle)
check(code[0] == "InvalidParameterValue", f"cancelling a cancelled task: {code}")

# The rest, each back to the queue it was dead-lettered from.
left = 6 - len(moved)
sqs.start_message_move_task(SourceArn=dlq_arn)
task = wait_for(dlq_arn, "COMPLETED")
check(task["ApproximateNumberOfMessagesMoved"] == task["ApproximateNumberOfMessagesToMove"] == left, f"completed: {task}")
check("DestinationArn" not in task and "MaxNumberOfMessagesPerSecond" not in task, f"{task}")
back_to_orders, back_to_billing = drain(orders_url), drain(billing_url)
check(all(body.startswith("order-") for body in back_to_orders), f"orders got {back_to_orders}")
check(all(body.startswith("invoice-") for body in back_to_billing), f"billing got {back_to_billing}")
everything = sorted(moved + back_to_orders + back_to_billing)
check(everything == sorted([f"order-{i}" for i in range(4)] + ["invoice-0", "invoice-1"]), f"moved {moved}, back {everything}")
check(count(dlq_url) == 0, "the DLQ is empty")
tasks = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
check([task["Status"] for task in tasks] == ["COMPLETED", "CANCELLED"], f"newest first: {tasks}")
print("move tasks: ok")
