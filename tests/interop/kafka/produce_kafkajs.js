// kafkajs: produce keyed messages and read the offsets back through the admin client.
const { Kafka } = require('kafkajs');
const assert = require('assert');

(async () => {
  const kafka = new Kafka({ clientId: 'interop', brokers: [process.env.CONVEYOR_KAFKA], logLevel: 1 });
  const topic = `kafkajs-${process.pid}-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] });
  const producer = kafka.producer();
  await producer.connect();
  const messages = Array.from({ length: 20 }, (_, i) => ({ key: `k${i % 4}`, value: `v${i}`, headers: { source: 'kafkajs' } }));
  const result = await producer.send({ topic, messages });
  assert.ok(result.every((r) => r.errorCode === 0), `produce errors: ${JSON.stringify(result)}`);
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets(topic);
  const total = offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
  assert.strictEqual(total, 20, `high watermarks ${JSON.stringify(offsets)} add up to ${total}, not 20`);
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.strictEqual(metadata.topics[0].partitions.length, 2);
  await admin.deleteTopics({ topics: [topic] });
  const listed = await admin.listTopics();
  assert.ok(!listed.includes(topic), 'deleted topic still listed');
  await admin.disconnect();
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
