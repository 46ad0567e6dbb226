"""One core: a message sent over SQS is consumed over AMQP (pika), and a
message published over AMQP is received over SQS."""
import pika

from common import AMQP_URL, check, client, unique

sqs = client()
name = unique("bridge")
url = sqs.create_queue(QueueName=name)["QueueUrl"]

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()
# The SQS queue is a durable queue without arguments: AMQP declares the same one.
channel.queue_declare(queue=name, durable=True)

sqs.send_message(
    QueueUrl=url, MessageBody='{"from": "sqs"}', MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}}
)
body = None
for method, properties, payload in channel.consume(name, inactivity_timeout=10):
    check(method is not None, "the AMQP consumer got the SQS message in time")
    body = payload
    channel.basic_ack(method.delivery_tag)
    break
channel.cancel()
check(body == b'{"from": "sqs"}', f"AMQP sees the SQS body as the message body: {body!r}")

channel.confirm_delivery()
channel.basic_publish(exchange="", routing_key=name, body=b"from amqp", properties=pika.BasicProperties(delivery_mode=2))
got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10, AttributeNames=["All"])["Messages"]
check(len(got) == 1 and got[0]["Body"] == "from amqp", f"{got}")
check(got[0]["Attributes"]["ApproximateReceiveCount"] == "1", f"{got}")
sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
check("Messages" not in sqs.receive_message(QueueUrl=url), "deleted over SQS")
connection.close()
print("bridge: ok")
