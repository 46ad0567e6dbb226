"""boto3 at the disk floor: once a line arrives on stdin, sends 64 KiB messages to QUEUE until the broker
holds one (the disk floor is crossed) and answers 503 ServiceUnavailable
after holding it, printing "held N" (N sends stored). Then it waits for a
line on stdin (the test frees space) and sends once more with boto3's
standard retries, which retry the 503 until the broker admits it, printing
"released"; the queue then holds exactly the N + 1 acknowledged messages."""
import sys

from botocore.exceptions import ClientError

from common import check, client

SENDS_MAX = 2000
BODY = "s" * (64 * 1024)
queue_name = sys.argv[1]

once = client()
url = once.create_queue(QueueName=queue_name)["QueueUrl"]
print("ready", flush=True)
# The test starts every producer at once.
sys.stdin.readline()
sent = 0
held = None
for _ in range(SENDS_MAX):
    try:
        once.send_message(QueueUrl=url, MessageBody=BODY)
        sent += 1
    except ClientError as error:
        held = error
        break
check(held is not None, f"{sent} sends of 64 KiB were never held")
code = held.response["Error"]["Code"]
status = held.response["ResponseMetadata"]["HTTPStatusCode"]
check((code, status) == ("ServiceUnavailable", 503), f"a held send is a retryable 503 ServiceUnavailable: {held.response}")
print(f"held {sent}", flush=True)

sys.stdin.readline()
retrying = client({"mode": "standard", "max_attempts": 10})
retrying.send_message(QueueUrl=url, MessageBody=BODY)
count = int(
    retrying.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
        "ApproximateNumberOfMessages"
    ]
)
check(count == sent + 1, f"the queue holds the {sent + 1} acknowledged sends, not {count}")
print("released", flush=True)
