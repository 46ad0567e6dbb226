// amqplib: a stream queue read as RabbitMQ's stream tutorial reads it over
// AMQP 0-9-1: with a prefetch, manual acks and x-stream-offset. Two
// consumers from 'first' read the same messages, one after the other acked;
// one from offset 3 reads the tail, each message's x-stream-offset header
// its offset; 'next' gets only later publishes, a timestamp only what was
// stamped from then on, an interval ('30m') everything that recent; a
// consumer without a prefetch is refused with 406. The stream is a Kafka
// topic at the same offsets: a kafkajs consumer group reads what amqplib
// published, and amqplib reads what a kafkajs producer wrote.
const assert = require('assert');
const crypto = require('crypto');
const amqp = require('amqplib');
const { Kafka } = require('kafkajs');

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

  // A timestamp start (AMQP timestamps are whole seconds): only what was
  // stamped from the next second on.
  const boundarySeconds = Math.floor(Date.now() / 1000) + 1;
  const waitUntil = Date.now() + 2000;
  while (Date.now() < boundarySeconds * 1000 && Date.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (let index = 8; index < 10; index += 1) publisher.sendToQueue(stream, Buffer.from(`m${index}`));
  await publisher.waitForConfirms();
  const all = Array.from({ length: 10 }, (_, index) => [`m${index}`, index]);
  assert.deepStrictEqual(await read(connection, stream, { '!': 'timestamp', value: boundarySeconds }, 2), all.slice(8),
    'from a timestamp');
  assert.deepStrictEqual(await read(connection, stream, '30m', 10), all, 'from 30 minutes ago');

  // 'next': nothing old, only what is published after the consumer started.
  const later = await connection.createChannel();
  await later.prefetch(3);
  const fresh = [];
  let arrived;
  const gotFresh = new Promise((resolve) => { arrived = resolve; });
  await later.consume(stream, (message) => {
    fresh.push([message.content.toString(), message.properties.headers['x-stream-offset']]);
    later.ack(message);
    arrived();
  }, { arguments: { 'x-stream-offset': 'next' } });
  publisher.sendToQueue(stream, Buffer.from('later'));
  await publisher.waitForConfirms();
  await Promise.race([gotFresh, new Promise((_, reject) => setTimeout(() => reject(new Error('nothing from next')), WAIT_MS))]);
  assert.deepStrictEqual(fresh, [['later', 10]], 'next');
  await later.close();

  // The stream is a one-partition Kafka topic at the same offsets.
  const kafka = new Kafka({ clientId: 'streams-amqplib', brokers: [process.env.CONVEYOR_KAFKA], logLevel: 1 });
  const consumer = kafka.consumer({ groupId: `${stream}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic: stream, fromBeginning: true });
  const consumed = [];
  let readAll;
  const allRead = new Promise((resolve) => { readAll = resolve; });
  await consumer.run({
    eachMessage: async ({ message }) => {
      consumed.push([message.value.toString(), Number(message.offset)]);
      if (consumed.length === 11) readAll();
    },
  });
  await Promise.race([allRead, new Promise((_, reject) => setTimeout(() => reject(new Error(`kafkajs read ${JSON.stringify(consumed)}`)), 30000))]);
  await consumer.disconnect();
  assert.deepStrictEqual(consumed, [...all, ['later', 10]], 'kafkajs reads what amqplib published');
  const producer = kafka.producer();
  await producer.connect();
  const [written] = await producer.send({ topic: stream, messages: [{ value: 'from kafkajs' }] });
  await producer.disconnect();
  const offset = Number(written.baseOffset);
  assert.strictEqual(offset, 11);
  assert.deepStrictEqual(await read(connection, stream, offset, 1), [['from kafkajs', offset]], 'amqplib reads what kafkajs wrote');

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
