// kafkajs reads a compacted topic (cleanup.policy=compact) as a key-value
// table: after updates and a tombstone, and once the cleaner has run (the
// broker's [log_cleaner] backoff_ms is short; the script polls with a
// deadline), a consumer from the beginning builds the table of each key's
// latest value, and reads no superseded record on the way.
const { Kafka } = require('kafkajs');
const assert = require('assert');

const DEADLINE_MS = 60000;

(async () => {
  const kafka = new Kafka({ clientId: 'compaction-table', brokers: [process.env.CONVEYOR_KAFKA], logLevel: 1 });
  const topic = `compacted-kafkajs-${process.pid}-${Date.now()}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{
      topic,
      numPartitions: 1,
      configEntries: [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'segment.bytes', value: '1024' },
        { name: 'delete.retention.ms', value: '0' },
        { name: 'min.cleanable.dirty.ratio', value: '0.01' },
      ],
    }],
  });
  const producer = kafka.producer();
  await producer.connect();
  const send = (key, value) => producer.send({ topic, acks: -1, messages: [{ key, value, partition: 0 }] });
  const expected = new Map();
  for (let round = 0; round < 3; round++) {
    for (const user of ['alice', 'bob', 'carol']) {
      const value = JSON.stringify({ user, visits: round + 1 });
      await send(user, value);
      expected.set(user, value);
    }
  }
  await send('mallory', 'banned soon');
  await send('mallory', null);
  for (let filler = 0; filler < 30; filler++) {
    await send('filler', `filler ${filler} `.repeat(4));
  }

  const readTable = async () => {
    const offsets = await admin.fetchTopicOffsets(topic);
    const high = Number(offsets[0].high);
    const consumer = kafka.consumer({ groupId: `table-${process.pid}-${Date.now()}-${Math.random()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const table = new Map();
    const seen = [];
    let done;
    const finished = new Promise((resolve) => { done = resolve; });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const key = message.key && message.key.toString();
        seen.push(key);
        if (message.value === null) {
          table.delete(key);
        } else if (key !== 'filler') {
          table.set(key, message.value.toString());
        }
        if (Number(message.offset) >= high - 1) done();
      },
    });
    const timer = setTimeout(done, 20000);
    await finished;
    clearTimeout(timer);
    await consumer.disconnect();
    return { table, seen };
  };

  const deadline = Date.now() + DEADLINE_MS;
  let last;
  for (;;) {
    last = await readTable();
    const userRecords = last.seen.filter((key) => key !== 'filler');
    const compacted = userRecords.length === expected.size && !userRecords.includes('mallory');
    if (compacted) break;
    if (Date.now() > deadline) {
      assert.fail(`not compacted within ${DEADLINE_MS} ms: read keys ${JSON.stringify(userRecords)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.deepStrictEqual([...last.table.entries()].sort(), [...expected.entries()].sort());
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
  console.log('ok');
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
