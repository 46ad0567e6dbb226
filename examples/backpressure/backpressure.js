// Backpressure with amqplib: a queue bounded to 20 messages with
// `x-overflow: reject-publish` (RabbitMQ's bounded queue) and a publisher far
// faster than its one consumer. When the queue is full the broker refuses the
// publish (a negative publisher confirm) instead of growing without bound or
// silently dropping; the publisher treats that as "slow down", waits and
// publishes the same message again. Exits non-zero unless the publisher was
// pushed back, the queue never held more than its bound, and the consumer got
// every message exactly once, in order.
const crypto = require('crypto');
const amqp = require('amqplib');

const RUN = crypto.randomBytes(4).toString('hex'); // unique names: runs can repeat on one broker
const QUEUE = `uploads-${RUN}`;
const MAX_LENGTH = 20;
const MESSAGES = 200;
const DEADLINE_MS = 60000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Publishes and waits for the broker's confirm: true if accepted, false if refused.
function publishConfirmed(channel, body) {
  return new Promise((resolve) => {
    channel.sendToQueue(QUEUE, Buffer.from(body), { persistent: true }, (error) => resolve(!error));
  });
}

(async () => {
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const publisher = await connection.createConfirmChannel();
  await publisher.assertQueue(QUEUE, { durable: true, arguments: { 'x-max-length': MAX_LENGTH, 'x-overflow': 'reject-publish' } });

  // A slow consumer: one message at a time, 5 ms of "work" each. It falls
  // behind from the start: it comes online only once the queue is full.
  const consumerChannel = await connection.createChannel();
  await consumerChannel.prefetch(1);
  const received = [];
  let consumerTag = null;
  const startConsumer = async () => {
    ({ consumerTag } = await consumerChannel.consume(QUEUE, async (msg) => {
      if (msg === null) return; // the broker cancelled the consumer
      await sleep(5);
      received.push(msg.content.toString());
      consumerChannel.ack(msg);
    }));
  };

  const deadline = Date.now() + DEADLINE_MS;
  let refusals = 0;
  let deepest = 0;
  for (let i = 0; i < MESSAGES && Date.now() < deadline; i++) {
    let backoffMs = 1;
    while (!(await publishConfirmed(publisher, `upload-${i}`))) {
      refusals++;
      if (consumerTag === null) await startConsumer();
      await sleep(backoffMs); // held: wait for the consumer to make room, then try again
      backoffMs = Math.min(backoffMs * 2, 50);
    }
    if (i % 10 === 0) deepest = Math.max(deepest, (await publisher.checkQueue(QUEUE)).messageCount);
  }
  if (consumerTag === null) await startConsumer(); // never refused: read what is there
  while (received.length < MESSAGES && Date.now() < deadline) await sleep(20);

  console.log(`publisher was refused ${refusals} times and waited; deepest queue seen: ${deepest} (bound ${MAX_LENGTH})`);
  console.log(`consumer received ${received.length} of ${MESSAGES}`);
  const failures = [];
  if (refusals === 0) failures.push('the publisher was never pushed back: the queue was not bounded');
  if (deepest > MAX_LENGTH) failures.push(`the queue held ${deepest} messages, above its bound`);
  const expected = Array.from({ length: MESSAGES }, (_, i) => `upload-${i}`);
  if (JSON.stringify(received) !== JSON.stringify(expected)) failures.push('messages were lost, duplicated or reordered');
  await consumerChannel.cancel(consumerTag);
  await publisher.deleteQueue(QUEUE);
  await connection.close();
  if (failures.length) {
    console.error('FAILED:', failures.join('; '));
    process.exit(1);
  }
  console.log('ok: the bounded queue held the publisher back and nothing was dropped');
})().catch((error) => { console.error(error); process.exit(1); });
