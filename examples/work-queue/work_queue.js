// Work queue with amqplib: three workers compete for tasks on one durable
// queue, each holding one unacknowledged task at a time (prefetch 1). One
// worker crashes mid-task; the broker redelivers its task to another worker.
// Exits non-zero unless every task was completed exactly once.
const crypto = require('crypto');
const amqp = require('amqplib');

const RUN = crypto.randomBytes(4).toString('hex'); // unique names: runs can repeat on one broker
const QUEUE = `tasks-${RUN}`;
const TASKS = 30;
const DEADLINE_MS = 30000;

async function worker(name, completed, { crashOnFirst = false } = {}) {
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await connection.createChannel();
  await channel.prefetch(1); // fair dispatch: no new task until this one is acked
  let crashed;
  const hasCrashed = new Promise((resolve) => { crashed = resolve; });
  await channel.consume(QUEUE, async (msg) => {
    const task = msg.content.toString();
    if (crashOnFirst) {
      console.log(`${name} took ${task} and crashed before acknowledging it`);
      crashOnFirst = false;
      await connection.close(); // the unacked task goes back to the queue
      crashed(task);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20)); // "work"
    completed.push({ worker: name, task, redelivered: msg.fields.redelivered });
    channel.ack(msg);
  });
  return { connection, channel, hasCrashed };
}

(async () => {
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(QUEUE, { durable: true });

  const completed = [];
  const crashing = await worker('worker-c', completed, { crashOnFirst: true });
  for (let i = 0; i < TASKS; i++) {
    channel.sendToQueue(QUEUE, Buffer.from(`task-${i}`), { persistent: true });
  }
  await channel.waitForConfirms(); // every task is durable in the broker
  const crashedTask = await crashing.hasCrashed;
  const workers = await Promise.all([worker('worker-a', completed), worker('worker-b', completed)]);

  const deadline = Date.now() + DEADLINE_MS;
  while (completed.length < TASKS && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  // The channel first: its close follows its acks on the channel's own
  // stream, where amqplib may send a connection's close ahead of them (and
  // an ack that arrives after the close is lost: the task is requeued).
  for (const w of workers) {
    await w.channel.close();
    await w.connection.close();
  }

  const byTask = new Map();
  for (const c of completed) byTask.set(c.task, (byTask.get(c.task) || 0) + 1);
  const perWorker = {};
  for (const c of completed) perWorker[c.worker] = (perWorker[c.worker] || 0) + 1;
  console.log('tasks completed per worker:', perWorker);
  const redelivery = completed.find((c) => c.task === crashedTask);
  console.log(`${crashedTask} was redelivered to ${redelivery && redelivery.worker} (redelivered flag: ${redelivery && redelivery.redelivered})`);

  const failures = [];
  if (byTask.size !== TASKS) failures.push(`${TASKS - byTask.size} tasks were never completed`);
  for (const [task, count] of byTask) if (count !== 1) failures.push(`${task} completed ${count} times`);
  if (!redelivery || !redelivery.redelivered) failures.push(`the crashed worker's ${crashedTask} was not redelivered`);
  if (Object.keys(perWorker).length < 2) failures.push('one worker did all the work: dispatch was not shared');
  const left = await channel.checkQueue(QUEUE);
  if (left.messageCount !== 0) failures.push(`${left.messageCount} tasks left in the queue`);
  await channel.deleteQueue(QUEUE);
  await connection.close();

  if (failures.length) {
    console.error('FAILED:', failures.join('; '));
    process.exit(1);
  }
  console.log(`ok: ${TASKS} tasks, each completed exactly once, the crashed worker's task redelivered`);
})().catch((error) => { console.error(error); process.exit(1); });
