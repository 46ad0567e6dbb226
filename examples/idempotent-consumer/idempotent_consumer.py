"""An idempotent consumer with boto3 (SQS) and SQLite.

Delivery is at-least-once, so duplicates happen: the producer retries a
send it thinks failed, and a consumer that crashes after doing the work but
before deleting the message gets it again once its visibility timeout
expires. The consumer records each order id in a deduplication table in the
same database transaction as the work (charging the customer), so a
duplicate is recognised and skipped. Exits non-zero unless every order was
charged exactly once although duplicates were delivered."""
import os
import sqlite3
import sys
import time
import uuid

import boto3

ENDPOINT = f"http://{os.environ.get('CONVEYOR_HTTP', '127.0.0.1:8080')}"
ORDERS = {f"order-{n}": 10 * n for n in range(1, 11)}  # order id -> amount
DUPLICATED_BY_PRODUCER = ["order-2", "order-7"]
CRASH_BEFORE_DELETE = {"order-3", "order-5"}
DEADLINE_S = 30

sqs = boto3.client(
    "sqs", endpoint_url=ENDPOINT, region_name="us-east-1",
    aws_access_key_id="example", aws_secret_access_key="example",
)
queue_url = sqs.create_queue(
    QueueName=f"payments-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "1"}
)["QueueUrl"]

for order_id, amount in ORDERS.items():
    sqs.send_message(QueueUrl=queue_url, MessageBody=f"charge {order_id} {amount}")
for order_id in DUPLICATED_BY_PRODUCER:  # a retried send: same order, new message
    sqs.send_message(QueueUrl=queue_url, MessageBody=f"charge {order_id} {ORDERS[order_id]}")

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE processed (order_id TEXT PRIMARY KEY)")
db.execute("CREATE TABLE charges (order_id TEXT, amount INTEGER)")


def process_payment(order_id, amount):
    """Charges once per order id, whatever the number of deliveries."""
    with db:  # one transaction: the dedup record and the effect together
        inserted = db.execute("INSERT OR IGNORE INTO processed VALUES (?)", (order_id,)).rowcount
        if not inserted:
            return False  # already processed: idempotent
        db.execute("INSERT INTO charges VALUES (?, ?)", (order_id, amount))
        return True


deliveries, skipped, crashed = 0, 0, set()
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline:
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    messages = response.get("Messages", [])
    if not messages and len(crashed) == len(CRASH_BEFORE_DELETE):
        pending = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        if pending["ApproximateNumberOfMessages"] == "0" and pending["ApproximateNumberOfMessagesNotVisible"] == "0":
            break
    for message in messages:
        deliveries += 1
        _, order_id, amount = message["Body"].split()
        if not process_payment(order_id, int(amount)):
            skipped += 1
            print(f"{order_id}: duplicate, skipped")
        if order_id in CRASH_BEFORE_DELETE and order_id not in crashed:
            crashed.add(order_id)
            print(f"{order_id}: charged, then the consumer crashed before deleting the message")
            continue  # never deleted: SQS delivers it again after the visibility timeout
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

charges = db.execute("SELECT order_id, COUNT(*), SUM(amount) FROM charges GROUP BY order_id").fetchall()
total = sum(amount for _, _, amount in charges)
sqs.delete_queue(QueueUrl=queue_url)
print(f"{deliveries} deliveries, {skipped} duplicates skipped, {len(charges)} orders charged, total {total}")
failures = []
if deliveries < len(ORDERS) + len(DUPLICATED_BY_PRODUCER) + len(CRASH_BEFORE_DELETE):
    failures.append(f"only {deliveries} deliveries: the duplicates never arrived")
if {order_id for order_id, _, _ in charges} != set(ORDERS) or any(count != 1 for _, count, _ in charges):
    failures.append(f"charges per order: {charges}")
if total != sum(ORDERS.values()):
    failures.append(f"charged {total}, expected {sum(ORDERS.values())}")
if failures:
    sys.exit("FAILED: " + "; ".join(failures))
print("ok: every order charged exactly once despite duplicate deliveries")
