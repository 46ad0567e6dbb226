// The AWS SDK v3 SQS snippet from the seeds (01-message-queues-pubsub.md),
// unmodified except for the client's endpoint and credentials and the queue
// URL. The harness around it creates the queue first and checks what the
// snippet received: the message it sent, with MD5s the SDK verified.
const assert = require('assert');
const { CreateQueueCommand } = require('@aws-sdk/client-sqs');

const endpoint = `http://${process.env.CONVEYOR_HTTP}`;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

async function seed(queueUrlFromHarness) {
// AWS SDK v3 (Node.js)
const { SQSClient, SendMessageCommand, ReceiveMessageCommand } = require('@aws-sdk/client-sqs');
const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials });
const queueUrl = queueUrlFromHarness;
// Send a message
await sqs.send(new SendMessageCommand({
QueueUrl: queueUrl,
MessageBody: JSON.stringify({ orderId: 'ORD-1234', action: 'process' })
}));
// Receive messages (long polling)
const response = await sqs.send(new ReceiveMessageCommand({
QueueUrl: queueUrl,
MaxNumberOfMessages: 10,
WaitTimeSeconds: 20 // Long polling -- waits up to 20s for messages
}));
  return response;
}

async function run() {
  const { SQSClient } = require('@aws-sdk/client-sqs');
  const admin = new SQSClient({ region: 'us-east-1', endpoint, credentials });
  const { QueueUrl } = await admin.send(new CreateQueueCommand({ QueueName: 'my-queue' }));
  const started = Date.now();
  const response = await seed(QueueUrl);
  assert.ok(Date.now() - started < 10000, 'the long poll returned as soon as the message was there');
  assert.strictEqual(response.Messages.length, 1);
  assert.deepStrictEqual(JSON.parse(response.Messages[0].Body), { orderId: 'ORD-1234', action: 'process' });
  assert.ok(response.Messages[0].ReceiptHandle);
  console.log('Received:', response.Messages[0].Body);
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
