// amqplib: RabbitMQ's RPC tutorial with Direct Reply-to. The client
// consumes amq.rabbitmq.reply-to with noAck and sends requests with
// replyTo amq.rabbitmq.reply-to; the server, on its own connection, answers
// to the default exchange with the replyTo it received (a per-channel
// token), which reaches the client without a queue.
const assert = require('assert');
const crypto = require('crypto');
const amqp = require('amqplib');

const PSEUDO_QUEUE = 'amq.rabbitmq.reply-to';

function fib(n) {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i += 1) [a, b] = [b, a + b];
  return a;
}

(async () => {
  const queue = `rpc_queue-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const serverConnection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const server = await serverConnection.createChannel();
  await server.assertQueue(queue, { durable: false });
  await server.prefetch(1);
  const seenReplyTo = [];
  await server.consume(queue, (message) => {
    seenReplyTo.push(message.properties.replyTo);
    const n = parseInt(message.content.toString(), 10);
    server.sendToQueue(message.properties.replyTo, Buffer.from(fib(n).toString()), {
      correlationId: message.properties.correlationId,
    });
    server.ack(message);
  });

  const clientConnection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const client = await clientConnection.createChannel();
  const pending = new Map();
  await client.consume(PSEUDO_QUEUE, (message) => {
    const resolve = pending.get(message.properties.correlationId);
    if (resolve) resolve(parseInt(message.content.toString(), 10));
  }, { noAck: true });

  const call = (n) => new Promise((resolve, reject) => {
    const correlationId = crypto.randomUUID();
    const timer = setTimeout(() => reject(new Error(`no reply to fib(${n}) within 10 s`)), 10000);
    pending.set(correlationId, (value) => { clearTimeout(timer); resolve(value); });
    client.sendToQueue(queue, Buffer.from(n.toString()), { correlationId, replyTo: PSEUDO_QUEUE });
  });

  const answers = await Promise.all([3, 15, 25].map(call));
  assert.deepStrictEqual(answers, [fib(3), fib(15), fib(25)]);
  assert.strictEqual(new Set(seenReplyTo).size, 1, `one token per channel: ${seenReplyTo}`);
  assert.ok(seenReplyTo[0].startsWith(`${PSEUDO_QUEUE}.`), `replyTo not rewritten: ${seenReplyTo[0]}`);

  // Consuming with acks is refused as RabbitMQ refuses it.
  const acking = await clientConnection.createChannel();
  const closed = new Promise((resolve) => acking.on('error', resolve));
  await assert.rejects(acking.consume(PSEUDO_QUEUE, () => {}, { noAck: false }));
  const error = await closed;
  assert.strictEqual(error.code, 406, `consume with acks: ${error.message}`);
  assert.match(error.message, /reply consumer cannot acknowledge/);

  await clientConnection.close();
  await serverConnection.close();
  console.log('amqplib direct reply-to ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
