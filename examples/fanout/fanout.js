// Pub/sub fan-out with amqplib: a fanout exchange copies each event to every
// queue bound to it, so each subscriber (email, analytics, audit) gets every
// event, in publish order. A subscriber that binds after an event was
// published does not get it: pub/sub delivers to whoever is subscribed now.
// Exits non-zero unless that holds.
const crypto = require('crypto');
const amqp = require('amqplib');

const RUN = crypto.randomBytes(4).toString('hex'); // unique names: runs can repeat on one broker
const EXCHANGE = `user-events-${RUN}`;
const EVENTS = 20;
const DEADLINE_MS = 30000;

async function subscriber(connection, name) {
  const channel = await connection.createChannel();
  const { queue } = await channel.assertQueue('', { exclusive: true }); // a private, server-named queue
  await channel.bindQueue(queue, EXCHANGE, '');
  const received = [];
  await channel.consume(queue, (msg) => received.push(msg.content.toString()), { noAck: true });
  return { name, received };
}

(async () => {
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const publisher = await connection.createConfirmChannel();
  await publisher.assertExchange(EXCHANGE, 'fanout', { durable: false, autoDelete: false });

  const subscribers = [];
  for (const name of ['email', 'analytics', 'audit']) subscribers.push(await subscriber(connection, name));
  const sent = [];
  for (let i = 0; i < EVENTS; i++) {
    const event = JSON.stringify({ type: 'user.signed_up', userId: i });
    publisher.publish(EXCHANGE, '', Buffer.from(event));
    sent.push(event);
  }
  await publisher.waitForConfirms();
  const late = await subscriber(connection, 'late-joiner');

  const deadline = Date.now() + DEADLINE_MS;
  while (subscribers.some((s) => s.received.length < EVENTS) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // One more event reaches all four, the late joiner included: once it has
  // arrived there, nothing older is still on its way to the late joiner.
  publisher.publish(EXCHANGE, '', Buffer.from('after-join'));
  await publisher.waitForConfirms();
  while (!late.received.includes('after-join') && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const failures = [];
  for (const s of subscribers) {
    const events = s.received.filter((e) => e !== 'after-join');
    console.log(`${s.name} received ${events.length} of ${EVENTS} events`);
    if (JSON.stringify(events) !== JSON.stringify(sent)) failures.push(`${s.name} did not get every event in order`);
  }
  console.log(`late-joiner received ${JSON.stringify(late.received)}`);
  if (JSON.stringify(late.received) !== JSON.stringify(['after-join'])) {
    failures.push('the late joiner should get only what was published after it subscribed');
  }
  await publisher.deleteExchange(EXCHANGE);
  await connection.close();
  if (failures.length) {
    console.error('FAILED:', failures.join('; '));
    process.exit(1);
  }
  console.log(`ok: ${subscribers.length} subscribers each got all ${EVENTS} events in order`);
})().catch((error) => { console.error(error); process.exit(1); });
