// The amqplib pub/sub snippet from the seeds (01-message-queues-pubsub.md):
// a durable `order-events` fanout exchange with `email-queue` and
// `inventory-queue` bound to it. The snippet uses `channel` without making
// one; the harness gives it a channel on Conveyor, then checks that both
// services received the event. The snippet publishes before its queues are
// bound (on RabbitMQ that first event goes nowhere too), so the harness
// publishes one more event once the bindings exist.
const assert = require('assert');
const amqp = require('amqplib');

async function seed(channel) {
// Publisher -- uses a fanout exchange
const exchange = 'order-events';
await channel.assertExchange(exchange, 'fanout', { durable: true });
const event = JSON.stringify({
type: 'order.placed',
orderId: 'ORD-1234',
total: 109.97
});
channel.publish(exchange, '', Buffer.from(event));
// ===== Subscriber 1: Email Service =====
const q1 = await channel.assertQueue('email-queue', { durable: true });
await channel.bindQueue(q1.queue, exchange, '');
channel.consume(q1.queue, (msg) => {
const event = JSON.parse(msg.content.toString());
console.log('Sending email for order:', event.orderId);
channel.ack(msg);
});
// ===== Subscriber 2: Inventory Service =====
const q2 = await channel.assertQueue('inventory-queue', { durable: true });
await channel.bindQueue(q2.queue, exchange, '');
channel.consume(q2.queue, (msg) => {
const event = JSON.parse(msg.content.toString());
console.log('Updating inventory for order:', event.orderId);
channel.ack(msg);
});
}

(async () => {
  const seen = [];
  const log = console.log;
  console.log = (...args) => { seen.push(args.join(' ')); log(...args); };
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await connection.createChannel();
  await seed(channel);
  channel.publish('order-events', '', Buffer.from(JSON.stringify({ type: 'order.placed', orderId: 'ORD-5678', total: 5 })));
  const both = () => seen.includes('Sending email for order: ORD-5678') && seen.includes('Updating inventory for order: ORD-5678');
  for (let deadline = Date.now() + 30000; !both(); ) {
    assert.ok(Date.now() < deadline, `both services did not receive ORD-5678 within 30 s: ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await channel.close();
  await connection.close();
  console.log = log;
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
