// kafkajs: conditional append with the conveyor.expected-offset and
// conveyor.expected-key-offset headers. kafkajs speaks Produce v7, which has
// no error message: a mismatch reaches it as INVALID_RECORD (not retried),
// and nothing of the refused message is written.
const { Kafka } = require('kafkajs');
const assert = require('assert');

(async () => {
  const kafka = new Kafka({ clientId: 'conditional', brokers: [process.env.CONVEYOR_KAFKA], logLevel: 1 });
  const topic = `conditional-kafkajs-${process.pid}-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const send = (key, value, headers) => producer.send({ topic, acks: -1, messages: [{ key, value, partition: 0, headers }] });
  const refusedType = async (promise) => {
    try {
      await promise;
    } catch (error) {
      return error.type || (error.cause && error.cause.type) || error.name;
    }
    return 'accepted';
  };
  let result = await send('cart-1', 'created', { 'conveyor.expected-key-offset': '-1' });
  assert.strictEqual(result[0].baseOffset, '0', JSON.stringify(result));
  assert.strictEqual(await refusedType(send('cart-1', 'created twice', { 'conveyor.expected-key-offset': '-1' })), 'INVALID_RECORD');
  result = await send('cart-1', 'item added', { 'conveyor.expected-key-offset': '0', 'conveyor.expected-offset': '1' });
  assert.strictEqual(result[0].baseOffset, '1', JSON.stringify(result));
  assert.strictEqual(await refusedType(send('cart-2', 'created', { 'conveyor.expected-offset': '9' })), 'INVALID_RECORD');
  // The idempotent producer carries on after the refusals.
  result = await send('cart-2', 'created', { 'conveyor.expected-offset': '2' });
  assert.strictEqual(result[0].baseOffset, '2', JSON.stringify(result));
  const offsets = await admin.fetchTopicOffsets(topic);
  assert.strictEqual(offsets[0].high, '3', `refused messages were written: ${JSON.stringify(offsets)}`);
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.log('ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
