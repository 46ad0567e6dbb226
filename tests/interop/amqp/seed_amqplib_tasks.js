// The amqplib work-queue snippet from the seeds (01-message-queues-pubsub.md),
// unmodified except for the broker address; main() returns its connection and channel instead of
// leaving them running so the harness can check what it printed: the message it sent
// is received back from the durable `tasks` queue and acknowledged.
const assert = require('assert');

async function seed() {
// Node.js example with amqplib
const amqp = require('amqplib');
async function main() {
// Connect to RabbitMQ
const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
const channel = await connection.createChannel();
// Create a queue (idempotent -- safe to call multiple times)
await channel.assertQueue('tasks', { durable: true });
// ===== PRODUCER: Send a message =====
const message = JSON.stringify({ orderId: 'ORD-1234', action: 'process' });
channel.sendToQueue('tasks', Buffer.from(message), { persistent: true });
console.log('Sent:', message);
// ===== CONSUMER: Receive messages =====
channel.consume('tasks', (msg) => {
const data = JSON.parse(msg.content.toString());
console.log('Received:', data);
// Process the message...
// Acknowledge -- tells RabbitMQ we're done, safe to delete
channel.ack(msg);
});
  return { connection, channel };
}
  return main();
}

(async () => {
  const seen = [];
  const log = console.log;
  console.log = (...args) => { seen.push(args); log(...args); };
  const { connection, channel: seedChannel } = await seed();
  const received = () => seen.find((args) => args[0] === 'Received:');
  for (let deadline = Date.now() + 30000; !received(); ) {
    assert.ok(Date.now() < deadline, 'the snippet did not receive its message within 30 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.deepStrictEqual(received()[1], { orderId: 'ORD-1234', action: 'process' });
  // Closing the channel (an RPC queued behind the snippet's ack) settles the
  // ack; then a fresh connection finds the queue empty.
  await seedChannel.close();
  await connection.close();
  const amqp = require('amqplib');
  const check = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await check.createChannel();
  const declared = await channel.checkQueue('tasks');
  assert.strictEqual(declared.messageCount, 0, `tasks still holds ${declared.messageCount} messages`);
  assert.strictEqual(await channel.get('tasks'), false, 'an acknowledged message was delivered again');
  await check.close();
  console.log = log;
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
