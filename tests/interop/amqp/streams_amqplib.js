// amqplib: a stream queue read as RabbitMQ's stream tutorial reads it over
// AMQP 0-9-1: with a prefetch, manual acks and x-stream-offset. Two
// consumers from 'first' read the same messages, one after the other acked;
// one from offset 3 reads the tail, each message's x-stream-offset header
// its offset; a consumer without a prefetch is refused with 406.
const assert = require('assert');
const crypto = require('crypto');
const amqp = require('amqplib');

const WAIT_MS = 10000;

async function read(connection, stream, offset, count) {
  const channel = await connection.createChannel();
  await channel.prefetch(3);
  const got = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const { consumerTag } = await channel.consume(stream, (message) => {
    got.push([message.content.toString(), message.properties.headers['x-stream-offset']]);
    channel.ack(message);
    if (got.length === count) done();
  }, { arguments: { 'x-stream-offset': offset } });
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out reading from ${offset}: ${JSON.stringify(got)}`)), WAIT_MS));
  await Promise.race([finished, timeout]);
  await channel.cancel(consumerTag);
  await channel.close();
  return got;
}

(async () => {
  const stream = `events-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const publisher = await connection.createConfirmChannel();
  await publisher.assertQueue(stream, { durable: true, arguments: { 'x-queue-type': 'stream', 'x-max-age': '1D' } });
  for (let index = 0; index < 8; index += 1) publisher.sendToQueue(stream, Buffer.from(`m${index}`));
  await publisher.waitForConfirms();

  const everything = Array.from({ length: 8 }, (_, index) => [`m${index}`, index]);
  assert.deepStrictEqual(await read(connection, stream, 'first', 8), everything);
  assert.deepStrictEqual(await read(connection, stream, 'first', 8), everything, 'a second reader from first');
  assert.deepStrictEqual(await read(connection, stream, 3, 5), everything.slice(3));

  const probe = await connection.createChannel();
  const closed = new Promise((resolve) => probe.on('error', resolve));
  probe.consume(stream, () => {}, { arguments: { 'x-stream-offset': 'first' } }).catch(() => {});
  const error = await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('no refusal')), WAIT_MS))]);
  assert.strictEqual(error.code, 406, String(error));
  assert.match(error.message, /consumer prefetch count is not set/);

  await connection.close();
  console.log('streams ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
