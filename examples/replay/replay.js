// Replay with kafkajs: consuming a Kafka topic does not remove anything. A
// consumer group reads the order events and commits; then the group's offsets
// are reset to the beginning (an admin operation, with the group stopped) and
// it reads them all again, identically; then a running consumer seeks to a
// point in time (the offsets for a timestamp) and reads only what came after.
// Exits non-zero unless each replay returns exactly the events expected, in
// order.
const crypto = require('crypto');
const { Kafka, logLevel } = require('kafkajs');

const kafka = new Kafka({ clientId: 'replay-example', brokers: [process.env.CONVEYOR_KAFKA], logLevel: logLevel.NOTHING });
const RUN = crypto.randomBytes(4).toString('hex'); // unique names: runs can repeat on one broker
const TOPIC = `order-events-${RUN}`;
const GROUP = `billing-${RUN}`;
const DEADLINE_MS = 30000;

// Reads `count` events with the group, from its committed position or from
// the partition offsets in `seekTo`.
async function readWithGroup(count, seekTo = []) {
  // A fetch with no data waits at most 500 ms (kafkajs' default is 5 s, which
  // disconnect() would wait out).
  const consumer = kafka.consumer({ groupId: GROUP, maxWaitTimeInMs: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  const values = [];
  await consumer.run({ eachMessage: async ({ message }) => { values.push(message.value.toString()); } });
  for (const { partition, offset } of seekTo) consumer.seek({ topic: TOPIC, partition, offset });
  const deadline = Date.now() + DEADLINE_MS;
  while (values.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await consumer.disconnect(); // commits what it processed
  return values;
}

(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1 }] });
  const producer = kafka.producer();
  await producer.connect();
  const first = ['order-1 placed', 'order-2 placed', 'order-1 paid'];
  await producer.send({ topic: TOPIC, messages: first.map((value) => ({ value })) });
  // A gap in time between the two sends, for the timestamp replay.
  await new Promise((r) => setTimeout(r, 50));
  const cutover = Date.now();
  const second = ['order-2 paid', 'order-1 shipped'];
  await producer.send({ topic: TOPIC, messages: second.map((value) => ({ value })) });
  await producer.disconnect();
  const all = [...first, ...second];

  const failures = [];
  const expect = (what, got, want) => {
    console.log(`${what}: ${JSON.stringify(got)}`);
    if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${what} read ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
  };

  expect('first read', await readWithGroup(all.length), all);

  await admin.resetOffsets({ groupId: GROUP, topic: TOPIC, earliest: true });
  expect('replay from the beginning', await readWithGroup(all.length), all);

  const offsets = await admin.fetchTopicOffsetsByTimestamp(TOPIC, cutover);
  expect(`replay from ${new Date(cutover).toISOString()}`, await readWithGroup(second.length, offsets), second);

  await admin.deleteTopics({ topics: [TOPIC] });
  await admin.disconnect();
  if (failures.length) {
    console.error('FAILED:', failures.join('; '));
    process.exit(1);
  }
  console.log('ok: the log was read three times: in full, replayed in full, and from a point in time');
})().catch((error) => { console.error(error); process.exit(1); });
