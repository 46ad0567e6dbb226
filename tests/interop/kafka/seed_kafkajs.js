// The kafkajs snippet from the seeds (01-message-queues-pubsub.md), unmodified
// except for the broker address, wrapped in an async function (it uses
// top-level await). After it, the harness checks that the consumer it starts
// joins the group and receives an event published after it subscribed
// (the snippet subscribes with fromBeginning: false).
const assert = require('assert');

async function seed() {
// Using kafkajs
const { Kafka } = require('kafkajs');
const kafka = new Kafka({
clientId: 'my-app',
brokers: [process.env.CONVEYOR_KAFKA]
});
// ===== PRODUCER =====
const producer = kafka.producer();
await producer.connect();
await producer.send({
topic: 'order-events',
messages: [
{
key: 'ORD-1234', // Partition key (same order always same partition)
value: JSON.stringify({
type: 'order.placed',
orderId: 'ORD-1234',
total: 109.97,
timestamp: new Date().toISOString()
})
}
]
});
// ===== CONSUMER =====
const consumer = kafka.consumer({ groupId: 'email-service' });
await consumer.connect();
await consumer.subscribe({ topic: 'order-events', fromBeginning: false });
await consumer.run({
eachMessage: async ({ topic, partition, message }) => {
const event = JSON.parse(message.value.toString());
console.log(`Partition ${partition} | Offset ${message.offset}`);
console.log('Event:', event);
// Process the event...
// Offset is auto-committed (Kafka tracks where each consumer group is)
}
});
  return { kafka, producer, consumer };
}

(async () => {
  const seen = [];
  const log = console.log;
  console.log = (...args) => { seen.push(args); log(...args); };
  const { kafka, producer, consumer } = await seed();
  // consumer.run() may resolve before the first join completes: wait (bounded)
  // until the group is Stable with the snippet's consumer holding the partition.
  const admin = kafka.admin();
  await admin.connect();
  for (let deadline = Date.now() + 30000; ; ) {
    const { groups } = await admin.describeGroups(['email-service']);
    if (groups[0].state === 'Stable' && groups[0].members.length === 1) break;
    assert.ok(Date.now() < deadline, `group not Stable within 30 s: ${JSON.stringify(groups)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await producer.send({ topic: 'order-events', messages: [{ key: 'ORD-5678', value: JSON.stringify({ type: 'order.placed', orderId: 'ORD-5678', total: 5 }) }] });
  const deadline = Date.now() + 30000;
  while (!seen.some((args) => args[0] === 'Event:' && args[1].orderId === 'ORD-5678')) {
    assert.ok(Date.now() < deadline, 'the snippet consumer did not receive ORD-5678 within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await consumer.disconnect();
  await producer.disconnect();
  // The consumer committed its position: the group's offset is past ORD-5678.
  const offsets = await admin.fetchOffsets({ groupId: 'email-service', topics: ['order-events'] });
  const committed = offsets[0].partitions.reduce((sum, p) => sum + Number(p.offset), 0);
  assert.ok(committed >= 2, `committed offsets ${JSON.stringify(offsets)} do not cover both events`);
  const groups = await admin.describeGroups(['email-service']);
  assert.strictEqual(groups.groups[0].groupId, 'email-service');
  await admin.disconnect();
  log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
