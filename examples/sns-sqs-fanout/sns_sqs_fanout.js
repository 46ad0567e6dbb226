// SNS + SQS fan-out with the AWS SDK v3: an `orders` topic with three SQS
// queues subscribed. `email` and `analytics` get every order event;
// `shipping` has a filter policy and gets only paid orders. `analytics`
// receives SNS's JSON envelope, the others the raw message. Each service then
// works from its own queue at its own pace. Exits non-zero unless every
// queue received exactly what its subscription promises.
const crypto = require('crypto');
const { SNSClient, CreateTopicCommand, SubscribeCommand, PublishCommand, DeleteTopicCommand } = require('@aws-sdk/client-sns');
const {
  SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, DeleteMessageCommand, DeleteQueueCommand,
} = require('@aws-sdk/client-sqs');

// Conveyor serves SNS and SQS on its HTTP port. On loopback any access key
// is accepted as the anonymous user unless the broker is configured otherwise.
const endpoint = `http://${process.env.CONVEYOR_HTTP}`;
const config = { region: 'us-east-1', endpoint, credentials: { accessKeyId: 'example', secretAccessKey: 'example' } };
const sns = new SNSClient(config);
const sqs = new SQSClient(config);
const suffix = crypto.randomBytes(3).toString('hex');

async function subscribedQueue(topicArn, name, attributes) {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-${suffix}` }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: Attributes.QueueArn, Attributes: attributes }));
  return { name, url: QueueUrl };
}

// Receives (and deletes) until `expected` bodies arrived, then makes sure nothing else is there.
async function drain({ url }, expected) {
  const bodies = [];
  const deadline = Date.now() + 15000;
  for (let extraPolls = 0; Date.now() < deadline && (bodies.length < expected || extraPolls++ < 1);) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    for (const m of Messages) {
      bodies.push(m.Body);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    }
  }
  return bodies;
}

(async () => {
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: `orders-${suffix}` }));
  const email = await subscribedQueue(TopicArn, 'email', { RawMessageDelivery: 'true' });
  const analytics = await subscribedQueue(TopicArn, 'analytics', {});
  const shipping = await subscribedQueue(TopicArn, 'shipping', {
    RawMessageDelivery: 'true',
    FilterPolicy: JSON.stringify({ status: ['paid'] }),
  });

  const events = [
    { orderId: 'o-1', status: 'placed' },
    { orderId: 'o-1', status: 'paid' },
    { orderId: 'o-2', status: 'placed' },
  ];
  for (const event of events) {
    await sns.send(new PublishCommand({
      TopicArn,
      Message: JSON.stringify(event),
      MessageAttributes: { status: { DataType: 'String', StringValue: event.status } },
    }));
  }

  const all = events.map((e) => JSON.stringify(e)).sort();
  const got = {
    email: (await drain(email, 3)).sort(),
    analytics: (await drain(analytics, 3)).map((body) => JSON.parse(body).Message).sort(),
    shipping: (await drain(shipping, 1)).sort(),
  };
  const want = { email: all, analytics: all, shipping: [JSON.stringify(events[1])] };
  const failures = [];
  for (const name of Object.keys(want)) {
    console.log(`${name} received ${got[name].length}: ${got[name].join(' ')}`);
    if (JSON.stringify(got[name]) !== JSON.stringify(want[name])) failures.push(`${name} expected ${want[name].join(' ')}`);
  }
  for (const q of [email, analytics, shipping]) await sqs.send(new DeleteQueueCommand({ QueueUrl: q.url }));
  await sns.send(new DeleteTopicCommand({ TopicArn }));
  if (failures.length) {
    console.error('FAILED:', failures.join('; '));
    process.exit(1);
  }
  console.log('ok: one publish reached every subscribed queue; the filter policy kept shipping to paid orders');
})().catch((error) => { console.error(error); process.exit(1); });
