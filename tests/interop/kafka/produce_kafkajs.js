// kafkajs: produce keyed messages and read the offsets back through the admin
// client; describe and alter configs, add partitions, delete records.
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
  // Configs: describe, alter (kafkajs sends the whole set), describe again.
  const CONFIG_RESOURCE_TOPIC = 2;
  const describeRetention = async () => {
    const described = await admin.describeConfigs({
      resources: [{ type: CONFIG_RESOURCE_TOPIC, name: topic, configNames: ['retention.ms'] }],
    });
    return described.resources[0].configEntries;
  };
  let entries = await describeRetention();
  assert.deepStrictEqual(entries.map((e) => [e.configName, e.isDefault]), [['retention.ms', true]]);
  await admin.alterConfigs({
    resources: [{ type: CONFIG_RESOURCE_TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '60000' }] }],
  });
  entries = await describeRetention();
  assert.deepStrictEqual(entries.map((e) => [e.configValue, e.isDefault]), [['60000', false]]);
  // More partitions, then records deleted below offset 2 of partition 0.
  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  const grown = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.strictEqual(grown.topics[0].partitions.length, 3);
  const first = offsets.find((p) => p.partition === 0);
  assert.ok(Number(first.high) >= 2, `partition 0 holds ${first.high} records`);
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '2' }] });
  const after = await admin.fetchTopicOffsets(topic);
  assert.strictEqual(after.find((p) => p.partition === 0).low, '2', `offsets after deleteTopicRecords ${JSON.stringify(after)}`);
  await admin.deleteTopics({ topics: [topic] });
  const listed = await admin.listTopics();
  assert.ok(!listed.includes(topic), 'deleted topic still listed');
  await admin.disconnect();
  console.log('ok');
})().catch((error) => { console.error(error); process.exit(1); });
