// amqplib and virtual hosts: a vhost created through the admin API is
// opened from the URL's path; the same queue name in `/` and in the vhost is
// two queues (each publish reaches only its own); a topic exchange declared
// in the vhost does not exist in `/`; an unknown vhost is refused.
const assert = require('assert');
const amqp = require('amqplib');

const http = `http://${process.env.CONVEYOR_HTTP}/api/v1`;
const vhost = `js-${process.pid}`;
const url = (name) => `${process.env.CONVEYOR_AMQP}/${encodeURIComponent(name)}`;

async function getBody(channel, queue) {
  const message = await channel.get(queue, { noAck: true });
  return message ? message.content.toString() : null;
}

(async () => {
  const created = await fetch(`${http}/vhosts/${encodeURIComponent(vhost)}`, { method: 'PUT' });
  assert.strictEqual(created.status, 201);

  const root = await amqp.connect(url('/'));
  const inner = await amqp.connect(url(vhost));
  const rootChannel = await root.createConfirmChannel();
  const innerChannel = await inner.createConfirmChannel();
  for (const channel of [rootChannel, innerChannel]) {
    await channel.assertQueue('tasks', { durable: true });
  }
  rootChannel.sendToQueue('tasks', Buffer.from('root task'));
  innerChannel.sendToQueue('tasks', Buffer.from('vhost task'));
  await rootChannel.waitForConfirms();
  await innerChannel.waitForConfirms();
  assert.strictEqual(await getBody(rootChannel, 'tasks'), 'root task');
  assert.strictEqual(await getBody(rootChannel, 'tasks'), null);
  assert.strictEqual(await getBody(innerChannel, 'tasks'), 'vhost task');
  assert.strictEqual(await getBody(innerChannel, 'tasks'), null);

  await innerChannel.assertExchange('events', 'topic', { durable: true });
  await innerChannel.bindQueue('tasks', 'events', 'order.*');
  innerChannel.publish('events', 'order.placed', Buffer.from('placed'));
  await innerChannel.waitForConfirms();
  assert.strictEqual(await getBody(innerChannel, 'tasks'), 'placed');
  const probe = await root.createChannel();
  probe.on('error', () => {}); // The 404 closes the channel: expected, checked below.
  const missing = await probe.checkExchange('events').then(() => null, (error) => error);
  assert.ok(missing && missing.code === 404, `the vhost's exchange is not in /: ${missing}`);
  await root.close();
  await inner.close();

  const refused = await amqp.connect(url('no-such-vhost')).then(() => null, (error) => error);
  // amqplib reports only that the broker closed instead of opening (pika's test checks the 530 and its text).
  assert.ok(refused && /Expected ConnectionOpenOk; got <ConnectionClose/.test(refused.message), `${refused}`);
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
