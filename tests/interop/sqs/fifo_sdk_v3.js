// AWS SDK v3 and a FIFO queue: sends (one and batched) carry MessageGroupId
// and SequenceNumber, the SDK verifies the MD5s of sends and receives, a
// content-deduplicated duplicate answers with the original MessageId, and
// one group comes back in order while another group's head is in flight.
const assert = require('assert');
const {
  SQSClient, CreateQueueCommand, SendMessageCommand, SendMessageBatchCommand, ReceiveMessageCommand, DeleteMessageCommand,
} = require('@aws-sdk/client-sqs');

const sqs = new SQSClient({
  region: 'us-east-1',
  endpoint: `http://${process.env.CONVEYOR_HTTP}`,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});

async function run() {
  const QueueName = `sdk-${process.pid}-${Date.now()}.fifo`;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({
    QueueName, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
  }));
  const attributes = { kind: { DataType: 'String', StringValue: 'order' } };
  const first = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x1', MessageGroupId: 'x', MessageAttributes: attributes }));
  const again = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x1', MessageGroupId: 'x', MessageAttributes: attributes }));
  assert.strictEqual(again.MessageId, first.MessageId, 'a content duplicate answers as the original');
  assert.strictEqual(again.SequenceNumber, first.SequenceNumber);
  const batch = await sqs.send(new SendMessageBatchCommand({
    QueueUrl,
    Entries: [
      { Id: 'y1', MessageBody: 'y1', MessageGroupId: 'y' },
      { Id: 'x2', MessageBody: 'x2', MessageGroupId: 'x' },
      { Id: 'y2', MessageBody: 'y2', MessageGroupId: 'y' },
    ],
  }));
  assert.strictEqual(batch.Successful.length, 3);
  assert.ok(batch.Successful.every((entry) => BigInt(entry.SequenceNumber) > BigInt(first.SequenceNumber)));

  const receive = async (max) => (await sqs.send(new ReceiveMessageCommand({
    QueueUrl, MaxNumberOfMessages: max, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'],
  }))).Messages || [];
  const head = await receive(1);
  assert.deepStrictEqual(head.map((m) => m.Body), ['x1']);
  assert.strictEqual(head[0].Attributes.MessageGroupId, 'x');
  assert.strictEqual(head[0].MessageAttributes.kind.StringValue, 'order');
  const others = await receive(10);
  assert.deepStrictEqual(others.map((m) => m.Body), ['y1', 'y2'], 'x is blocked while x1 is in flight');
  await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: head[0].ReceiptHandle }));
  const next = await receive(10);
  assert.deepStrictEqual(next.map((m) => m.Body), ['x2']);
  console.log('fifo sdk v3: ok');
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
