"""One core, one set of rules: a queue declared over AMQP (pika) with
x-max-length keeps its limit when SQS sends into it (boto3) — a
reject-publish queue refuses the messages past the limit (SendMessage and
each batch entry get OverLimit), a drop-head queue keeps the newest."""
import pika
from botocore.exceptions import ClientError

from common import AMQP_URL, check, client, unique

sqs = client()
connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

rejecting = unique("capped-reject")
channel.queue_declare(queue=rejecting, durable=True, arguments={"x-max-length": 3, "x-overflow": "reject-publish"})
url = sqs.get_queue_url(QueueName=rejecting)["QueueUrl"]
batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{n}", "MessageBody": f"m{n}"} for n in range(5)])
check(sorted(entry["Id"] for entry in batch.get("Successful", [])) == ["m0", "m1", "m2"],
      f"the first three entries fit under x-max-length 3: {batch}")
failed = batch.get("Failed", [])
check(sorted(entry["Id"] for entry in failed) == ["m3", "m4"] and all(entry["Code"] == "OverLimit" and entry["SenderFault"] for entry in failed),
      f"the entries past the limit fail with OverLimit: {failed}")
try:
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    check(False, "SendMessage into a full reject-publish queue was accepted")
except ClientError as error:
    check(error.response["Error"]["Code"] in ("OverLimit", "AWS.SimpleQueueService.OverLimit"), f"{error.response['Error']}")
declared = channel.queue_declare(queue=rejecting, passive=True)
check(declared.method.message_count == 3, f"the queue holds its limit: {declared.method.message_count}")

dropping = unique("capped-drop")
channel.queue_declare(queue=dropping, durable=True, arguments={"x-max-length": 2})
url = sqs.get_queue_url(QueueName=dropping)["QueueUrl"]
batch = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"m{n}", "MessageBody": f"m{n}"} for n in range(5)])
check(len(batch.get("Successful", [])) == 5 and not batch.get("Failed"), f"drop-head takes every message: {batch}")
bodies = []
for _ in range(5):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    if not got:
        break
    bodies.extend(message["Body"] for message in got)
check(sorted(bodies) == ["m3", "m4"], f"drop-head keeps the newest two: {bodies}")
connection.close()
print("length limits: ok")
