// SNS fan-out with the AWS SDK v3 for JavaScript: a topic with a raw and a
// filtered SQS subscriber; Publish and PublishBatch; the SQS client (which
// verifies MD5s) reads back exactly what each subscription should get; a
// missing topic is the SDK's modeled NotFoundException.
const assert = require('assert');
const crypto = require('crypto');
const {
  SNSClient, CreateTopicCommand, SubscribeCommand, PublishCommand, PublishBatchCommand,
  ListSubscriptionsByTopicCommand, DeleteTopicCommand, NotFoundException,
} = require('@aws-sdk/client-sns');
const {
  SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, DeleteMessageCommand,
} = require('@aws-sdk/client-sqs');

const endpoint = `http://${process.env.CONVEYOR_HTTP}`;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
const sns = new SNSClient({ region: 'us-east-1', endpoint, credentials });
const sqs = new SQSClient({ region: 'us-east-1', endpoint, credentials });
const unique = (prefix) => `${prefix}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;

async function queue(name) {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  return { url: QueueUrl, arn: Attributes.QueueArn };
}

// Receives and deletes until `expected` messages came (bounded), then checks nothing more is there.
async function receiveAll(url, expected) {
  const messages = [];
  const deadline = Date.now() + 10000;
  while (messages.length < expected && Date.now() < deadline) {
    const response = await sqs.send(new ReceiveMessageCommand({
      QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'],
    }));
    for (const message of response.Messages || []) {
      messages.push(message);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: message.ReceiptHandle }));
    }
  }
  const extra = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  assert.deepStrictEqual(extra.Messages || [], [], `nothing beyond the ${expected} expected`);
  return messages;
}

async function run() {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: unique('events') }));
  const raw = await queue(unique('raw'));
  const filtered = await queue(unique('filtered'));
  await sns.send(new SubscribeCommand({
    TopicArn, Protocol: 'sqs', Endpoint: raw.arn, Attributes: { RawMessageDelivery: 'true' },
  }));
  await sns.send(new SubscribeCommand({
    TopicArn, Protocol: 'sqs', Endpoint: filtered.arn, Attributes: { FilterPolicy: JSON.stringify({ level: ['error'] }) },
  }));
  const listed = await sns.send(new ListSubscriptionsByTopicCommand({ TopicArn }));
  assert.deepStrictEqual(listed.Subscriptions.map((s) => s.Endpoint).sort(), [raw.arn, filtered.arn].sort());

  const level = (value) => ({ level: { DataType: 'String', StringValue: value } });
  const published = await sns.send(new PublishCommand({ TopicArn, Message: 'disk full', MessageAttributes: level('error') }));
  assert.ok(published.MessageId);
  const batch = await sns.send(new PublishBatchCommand({
    TopicArn,
    PublishBatchRequestEntries: [
      { Id: 'one', Message: 'started', MessageAttributes: level('info') },
      { Id: 'two', Message: 'crashed', MessageAttributes: level('error') },
    ],
  }));
  assert.deepStrictEqual(batch.Successful.map((s) => s.Id).sort(), ['one', 'two']);
  assert.deepStrictEqual(batch.Failed || [], []);

  const rawMessages = await receiveAll(raw.url, 3);
  assert.deepStrictEqual(rawMessages.map((m) => m.Body).sort(), ['crashed', 'disk full', 'started']);
  for (const message of rawMessages) {
    assert.ok(['error', 'info'].includes(message.MessageAttributes.level.StringValue), 'raw delivery keeps attributes');
  }
  const envelopes = (await receiveAll(filtered.url, 2)).map((m) => JSON.parse(m.Body));
  assert.deepStrictEqual(envelopes.map((e) => e.Message).sort(), ['crashed', 'disk full']);
  const first = envelopes.find((e) => e.Message === 'disk full');
  assert.strictEqual(first.Type, 'Notification');
  assert.strictEqual(first.MessageId, published.MessageId);
  assert.strictEqual(first.TopicArn, TopicArn);
  assert.deepStrictEqual(first.MessageAttributes.level, { Type: 'String', Value: 'error' });

  await sns.send(new DeleteTopicCommand({ TopicArn }));
  await assert.rejects(
    sns.send(new PublishCommand({ TopicArn, Message: 'gone' })),
    (error) => error instanceof NotFoundException && error.$metadata.httpStatusCode === 404,
  );
  console.log('ok');
}

run().catch((error) => {
  console.error(error);
  process.exit(1);
});
