// The web console in Debian's Chromium, driven by playwright-core: a topic
// created over Kafka (kafkajs) and queues declared over AMQP (amqplib) show
// up; traffic moves the overview's rate chart; a message dead-lettered over
// AMQP is inspected in the DLQ view and redriven from the UI, and the admin
// API then finds it back in its source queue. A screenshot of every page
// goes to the folder given as the first argument.
//
//   node console_playwright.js SCREENSHOT_DIR CHROMIUM_EXECUTABLE
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { Kafka, logLevel } = require('kafkajs');
const amqp = require('amqplib');

const [screenshots, executablePath] = process.argv.slice(2);
assert.ok(screenshots && executablePath, 'usage: console_playwright.js SCREENSHOT_DIR CHROMIUM_EXECUTABLE');
const base = `http://${process.env.CONVEYOR_HTTP}`;
const suffix = `${process.pid}`;
const TOPIC = `orders-${suffix}`;
const GROUP = `billing-${suffix}`;
const JOBS = `jobs-${suffix}`;
const DLQ = `jobs-${suffix}.dlq`;
const WORK = `work-${suffix}`;
// Rendered by the console, it must stay text: a page that turned API data
// into HTML would run the handler and set window.pwned.
const HOSTILE_BODY = '<img src=x onerror="window.pwned=1"> resize image 7';
const WAIT_MS = 30000;

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a truthy value, at most `timeoutMs`. */
async function eventually(what, probe, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last error: ${last.message})` : ''}`);
    await pause(100);
  }
}

async function api(pathname) {
  const response = await fetch(`${base}/api/v1${pathname}`);
  const body = await response.text();
  assert.strictEqual(response.status, 200, `GET ${pathname}: ${response.status} ${body}`);
  return JSON.parse(body);
}

async function main() {
  fs.mkdirSync(screenshots, { recursive: true });

  // A topic over Kafka, with a few records and a group that lags behind.
  const kafka = new Kafka({ clientId: 'console-test', brokers: [process.env.CONVEYOR_KAFKA], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic: TOPIC, messages: Array.from({ length: 12 }, (_, i) => ({ key: `customer-${i % 4}`, value: JSON.stringify({ order: i, total: 10 + i }) })) });
  await admin.setOffsets({ groupId: GROUP, topic: TOPIC, partitions: [0, 1, 2].map((partition) => ({ partition, offset: '1' })) });

  // Queues over AMQP: jobs dead-letters into jobs.dlq; work has a consumer.
  const connection = await amqp.connect(process.env.CONVEYOR_AMQP);
  const channel = await connection.createChannel();
  await channel.assertQueue(DLQ, { durable: true });
  await channel.assertQueue(JOBS, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': DLQ } });
  await channel.assertQueue(WORK, { durable: true });
  await channel.consume(WORK, (message) => channel.ack(message));
  channel.sendToQueue(JOBS, Buffer.from(HOSTILE_BODY), { persistent: true, headers: { attempt: 3 } });
  const job = await eventually('the job to be delivered', () => channel.get(JOBS, { noAck: false }));
  channel.nack(job, false, false);
  await eventually('the job to be dead-lettered', async () => (await api(`/queues/${encodeURIComponent(DLQ)}`)).messages_ready === 1);

  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const traffic = { running: true, sent: 0 };
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // A 404 from an API the broker lacks is answered in the page; Chromium still logs the request.
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
    });
    const shot = (name) => page.screenshot({ path: path.join(screenshots, `${name}.png`) });
    const open = async (hash, page_) => {
      await page.goto(`${base}/#/${hash}`);
      await page.locator(`.view[data-page="${page_}"][data-loaded="true"]`).waitFor({ timeout: WAIT_MS });
    };

    // Overview: counts, then traffic moves the rate chart.
    await open('overview', 'overview');
    await eventually('the overview to count the topic and the queues', async () =>
      Number((await page.locator('[data-stat="topics"] .stat-value').textContent()).replace(/,/g, '')) >= 1 &&
      Number((await page.locator('[data-stat="queues"] .stat-value').textContent()).replace(/,/g, '')) >= 3);
    const samples = async () => Number(await page.locator('svg[data-chart="rates"]').getAttribute('data-samples'));
    const lastRate = async (series) => Number(await page.locator(`svg[data-chart="rates"] path[data-series="${series}"]`).getAttribute('data-last'));
    const before = await samples();
    const produce = (async () => {
      for (let round = 0; traffic.running && round < 2000; round += 1) {
        await producer.send({ topic: TOPIC, messages: Array.from({ length: 20 }, (_, i) => ({ key: `customer-${i % 4}`, value: `event ${round}.${i}` })) });
        for (let i = 0; i < 20; i += 1) channel.sendToQueue(WORK, Buffer.from(`work ${round}.${i}`));
        traffic.sent += 40;
        await pause(50);
      }
    })();
    await eventually('the rate chart to show messages coming in and going out', async () =>
      (await samples()) > before && (await lastRate('in')) > 0 && (await lastRate('out')) > 0);
    // A few more samples so the screenshot shows a line, not a dot.
    const moved = await samples();
    await eventually('more rate samples', async () => (await samples()) >= moved + 3);
    assert.ok(Number(await page.locator('svg[data-chart="disk"]').getAttribute('data-samples')) >= 2, 'bytes on disk is charted');
    await shot('overview');
    traffic.running = false;
    await produce;

    // Topics: the Kafka topic, then its partitions with offsets.
    await page.click('#nav a[data-route="topics"]');
    await page.locator(`table[data-table="topics"] tr[data-name="${TOPIC}"]`).waitFor({ timeout: WAIT_MS });
    await shot('topics');
    await page.click(`table[data-table="topics"] tr[data-name="${TOPIC}"] a`);
    await page.locator('table[data-table="partitions"] tbody tr').nth(2).waitFor({ timeout: WAIT_MS });
    assert.strictEqual(await page.locator('table[data-table="partitions"] tbody tr').count(), 3);
    await page.locator('table[data-table="messages"] tbody tr[data-name]').first().waitFor({ timeout: WAIT_MS });
    await shot('topic');

    // Consumer groups: the group and its lag per partition.
    await page.click('#nav a[data-route="groups"]');
    await page.locator(`table[data-table="groups"] tr[data-name="${GROUP}"]`).waitFor({ timeout: WAIT_MS });
    await page.click(`table[data-table="groups"] tr[data-name="${GROUP}"] a`);
    await page.locator('table[data-table="offsets"] tbody tr').nth(2).waitFor({ timeout: WAIT_MS });
    const lag = Number((await page.locator('[data-stat="total-lag"] .stat-value').textContent()).replace(/,/g, ''));
    assert.ok(lag > 0, `the group lags (${lag})`);
    await shot('group');

    // Queues: the ones declared over AMQP.
    await page.click('#nav a[data-route="queues"]');
    for (const name of [JOBS, DLQ, WORK]) await page.locator(`table[data-table="queues"] tr[data-name="${name}"]`).waitFor({ timeout: WAIT_MS });
    await shot('queues');

    // The DLQ view: inspect the dead letter, then redrive it from the UI.
    await page.click(`table[data-table="queues"] tr[data-name="${DLQ}"] a`);
    const row = page.locator('table[data-table="messages"] tbody tr[data-name]').first();
    await row.waitFor({ timeout: WAIT_MS });
    assert.match(await row.textContent(), /rejected/, 'the dead-letter reason is shown');
    assert.ok((await row.textContent()).includes(HOSTILE_BODY), 'the body is shown as text');
    await row.click();
    const inspected = page.locator('.inspect pre').first();
    await inspected.waitFor({ timeout: WAIT_MS });
    assert.strictEqual(await inspected.textContent(), HOSTILE_BODY);
    assert.ok((await page.locator('.inspect').textContent()).includes('conveyor.death-queue'), 'the death headers are listed');
    assert.strictEqual(await page.evaluate(() => window.pwned), undefined, 'API data was rendered as HTML');
    await shot('dlq');
    await page.click('form[data-form="redrive"] button[type="submit"]');
    await page.locator('#confirm[open]').waitFor({ timeout: WAIT_MS });
    await page.click('#confirm-ok');
    const result = page.locator('.redrive-result [data-moved]');
    await result.waitFor({ timeout: WAIT_MS });
    assert.strictEqual(await result.getAttribute('data-moved'), '1', await result.textContent());
    await page.locator('table[data-table="messages"] tr.empty').waitFor({ timeout: WAIT_MS });
    await shot('dlq-redriven');

    // The admin API finds the message back in its source queue.
    const source = await api(`/queues/${encodeURIComponent(JOBS)}`);
    assert.strictEqual(source.messages_ready, 1, JSON.stringify(source));
    assert.strictEqual((await api(`/queues/${encodeURIComponent(DLQ)}`)).messages_ready, 0);
    const peeked = await api(`/queues/${encodeURIComponent(JOBS)}/messages?count=5`);
    assert.deepStrictEqual(peeked.messages.map((message) => message.value), [HOSTILE_BODY]);

    // Exchanges and bindings.
    await page.click('#nav a[data-route="exchanges"]');
    await page.locator('table[data-table="exchanges"] tr[data-name="amq.direct"]').waitFor({ timeout: WAIT_MS });
    await shot('exchanges');

    // Connections: listed with this test's AMQP connection, or quietly unavailable.
    await page.click('#nav a[data-route="connections"]');
    await page.locator('.view[data-page="connections"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    if (await page.locator('[data-unavailable="connections"]').count() === 0) {
      await page.locator('table[data-table="connections"] tbody tr[data-name]').first().waitFor({ timeout: WAIT_MS });
      assert.match(await page.locator('table[data-table="connections"]').textContent(), /AMQP/);
    }
    await shot('connections');

    assert.deepStrictEqual(problems, [], 'the console logged errors');
    await page.close();
  } finally {
    traffic.running = false;
    await browser.close();
    await connection.close();
    await producer.disconnect();
    await admin.disconnect();
  }
  console.log(`ok (${traffic.sent} messages of traffic; screenshots in ${screenshots})`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
