// amqplib: a priority queue (assertQueue's maxPriority, sendToQueue's
// priority) hands a consumer that arrives after the publishes the messages
// of higher priority first, FIFO within a priority; a maxPriority above 255
// is refused with 406.
const assert = require('assert');
const crypto = require('crypto');
const amqp = require('amqplib');

(async () => {
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await connection.createConfirmChannel();
  const queue = `prio-amqplib-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  await channel.assertQueue(queue, { durable: true, maxPriority: 5 });
  const published = [['none', undefined], ['p2-a', 2], ['p9', 9], ['p2-b', 2], ['p5', 5], ['p0', 0]];
  for (const [body, priority] of published) {
    channel.sendToQueue(queue, Buffer.from(body), { persistent: true, priority });
  }
  await channel.waitForConfirms();
  const received = [];
  await channel.prefetch(100);
  await channel.consume(queue, (message) => received.push(message.content.toString()), { noAck: true });
  for (let deadline = Date.now() + 10000; received.length < published.length; ) {
    assert.ok(Date.now() < deadline, `only ${JSON.stringify(received)} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // 9 counts as the maximum, 5, and comes before the 5 published after it.
  assert.deepStrictEqual(received, ['p9', 'p5', 'p2-a', 'p2-b', 'none', 'p0']);

  const other = await connection.createChannel();
  other.on('error', () => {});
  await assert.rejects(
    other.assertQueue(`${queue}-bad`, { maxPriority: 300 }),
    (error) => error.code === 406 && /x-max-priority/.test(error.message),
  );
  await channel.close();
  await connection.close();
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
