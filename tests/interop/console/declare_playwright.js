// The console's declare forms in Debian's Chromium, driven by playwright-core:
// a second vhost created from the Vhosts page; in it, picked with the vhost picker, an exchange, a dead-letter
// queue, a binding and a queue with a dead-letter exchange, TTL, max-length,
// priority and type are declared from the forms; the admin API then finds
// them as declared; a queue link keeps its vhost (the `/` queue of the same
// name is another queue); a refused declaration shows the broker's message;
// a message is published to the queue and rejected from its page with the get
// form, and reaches the dead-letter queue; a binding is removed and a queue
// deleted from the page; the vhost is deleted from the Vhosts page.
//
//   node declare_playwright.js SCREENSHOT_DIR CHROMIUM_EXECUTABLE
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [screenshots, executablePath] = process.argv.slice(2);
assert.ok(screenshots && executablePath, 'usage: declare_playwright.js SCREENSHOT_DIR CHROMIUM_EXECUTABLE');
const base = `http://${process.env.CONVEYOR_HTTP}`;
const VHOST = 'staging';
const WAIT_MS = 30000;

async function call(method, pathname, body) {
  const response = await fetch(`${base}/api/v1${pathname}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function main() {
  fs.mkdirSync(screenshots, { recursive: true });
  // A queue of the same name in `/`, which the staging queue's links must not open.
  assert.strictEqual((await call('PUT', '/queues/jobs', { durable: true })).status, 201);

  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
    });
    const shot = (name) => page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
    const loaded = (name) => page.locator(`.view[data-page="${name}"][data-loaded="true"]`).waitFor({ timeout: WAIT_MS });

    // Vhosts: create the second vhost from its form.
    await page.goto(`${base}/#/vhosts`);
    await loaded('vhosts');
    const vhostForm = page.locator('form[data-form="create-vhost"]');
    await vhostForm.locator('input[name="name"]').fill(VHOST);
    await vhostForm.locator('button[type="submit"]').click();
    await page.locator('[data-done="create-vhost"]').waitFor({ timeout: WAIT_MS });
    await page.locator(`table[data-table="vhosts"] tr[data-name="${VHOST}"]`).waitFor({ timeout: WAIT_MS });
    assert.strictEqual((await call('GET', '/vhosts')).body.filter((v) => v.name === VHOST).length, 1);

    // Exchanges: pick the vhost, declare the dead-letter exchange.
    await page.click('#nav a[data-route="exchanges"]');
    await loaded('exchanges');
    await page.locator('select[name="vhost"] option[value="staging"]').waitFor({ state: 'attached', timeout: WAIT_MS });
    await page.selectOption('select[name="vhost"]', VHOST);
    await page.locator('.page-head p', { hasText: 'in vhost staging' }).waitFor({ timeout: WAIT_MS });
    const exchangeForm = page.locator('form[data-form="declare-exchange"]');
    await exchangeForm.locator('input[name="name"]').fill('jobs.dlx');
    await exchangeForm.locator('select[name="type"]').selectOption('fanout');
    await exchangeForm.locator('button[type="submit"]').click();
    await page.locator('[data-done="declare-exchange"]').waitFor({ timeout: WAIT_MS });
    await page.locator('table[data-table="exchanges"] tr[data-name="jobs.dlx"]').waitFor({ timeout: WAIT_MS });

    // Queues: the dead-letter queue, then the queue with its arguments.
    await page.click('#nav a[data-route="queues"]');
    await loaded('queues');
    await page.locator('.page-head p', { hasText: 'in vhost staging' }).waitFor({ timeout: WAIT_MS });
    const queueForm = page.locator('form[data-form="declare-queue"]');
    const declareQueue = async (fields, type) => {
      for (const [name, value] of Object.entries(fields)) await queueForm.locator(`input[name="${name}"]`).fill(value);
      if (type) await queueForm.locator('select[name="x-queue-type"]').selectOption(type);
      await queueForm.locator('button[type="submit"]').click();
    };
    await declareQueue({ name: 'jobs.dlq' });
    await page.locator('[data-declared="jobs.dlq"]').waitFor({ timeout: WAIT_MS });
    // Refused as the AMQP door refuses it: the broker's message, in the page.
    await declareQueue({ name: 'amq.jobs' });
    await page.locator('.declare-result .notice-error', { hasText: "reserved prefix 'amq.*'" }).waitFor({ timeout: WAIT_MS });
    await declareQueue({
      name: 'jobs', 'x-dead-letter-exchange': 'jobs.dlx', 'x-message-ttl': '60000', 'x-max-length': '100', 'x-max-priority': '5',
    }, 'quorum');
    await page.locator('[data-declared="jobs"]').waitFor({ timeout: WAIT_MS });
    await page.locator('table[data-table="queues"] tr[data-name="jobs"]').waitFor({ timeout: WAIT_MS });
    await shot('declare-queues');
    const declared = (await call('GET', `/queues/jobs?vhost=${VHOST}`)).body;
    assert.deepStrictEqual(declared.arguments, {
      'x-dead-letter-exchange': 'jobs.dlx', 'x-message-ttl': '60000', 'x-max-length': '100', 'x-max-priority': '5', 'x-queue-type': 'quorum',
    });
    assert.strictEqual(declared.vhost, VHOST);
    assert.deepStrictEqual((await call('GET', '/queues/jobs')).body.arguments, {}, 'the / queue is untouched');

    // Bind the dead-letter queue from the exchanges page.
    await page.click('#nav a[data-route="exchanges"]');
    await loaded('exchanges');
    const bindingForm = page.locator('form[data-form="add-binding"]');
    await bindingForm.locator('input[name="source"]').fill('jobs.dlx');
    await bindingForm.locator('input[name="destination"]').fill('jobs.dlq');
    await bindingForm.locator('button[type="submit"]').click();
    await page.locator('[data-done="add-binding"]').waitFor({ timeout: WAIT_MS });
    await page.locator('table[data-table="bindings"] tbody tr', { hasText: 'jobs.dlq' }).waitFor({ timeout: WAIT_MS });
    await shot('declare-exchanges');
    const bindings = (await call('GET', `/bindings?vhost=${VHOST}`)).body;
    assert.ok(bindings.some((b) => b.source === 'jobs.dlx' && b.destination === 'jobs.dlq' && b.destination_type === 'queue'), JSON.stringify(bindings));

    // The queue's link keeps the vhost: its page shows the staging queue and where its dead letters go.
    await page.click('#nav a[data-route="queues"]');
    await loaded('queues');
    await page.click('table[data-table="queues"] tr[data-name="jobs"] a');
    await page.locator('.view[data-page="queues"][data-view="detail"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    assert.match(page.url(), /#\/queues\/jobs\?vhost=staging$/);
    await page.locator('.facts', { hasText: 'jobs.dlq' }).waitFor({ timeout: WAIT_MS });
    assert.match(await page.locator('.facts').textContent(), /x-max-priority/);
    await shot('declare-queue');

    // Publish to the queue from its page, then reject it with the get form: it is dead-lettered to jobs.dlq.
    const publishForm = page.locator('form[data-form="publish-queue"]');
    await publishForm.locator('input[name="value"]').fill('job-1');
    await publishForm.locator('input[name="headers"]').fill('tenant=acme');
    await publishForm.locator('button[type="submit"]').click();
    await page.locator('[data-done="publish-queue"]').waitFor({ timeout: WAIT_MS });
    assert.strictEqual((await call('GET', `/queues/jobs?vhost=${VHOST}`)).body.messages_ready, 1);
    const getForm = page.locator('form[data-form="get-queue"]');
    await getForm.locator('select[name="ackmode"]').selectOption('reject_requeue_false');
    await getForm.locator('button[type="submit"]').click();
    await page.locator('[data-done="get-queue"]', { hasText: 'Got 1 message' }).waitFor({ timeout: WAIT_MS });
    await page.locator('.got-messages table[data-table="messages"]', { hasText: 'job-1' }).waitFor({ timeout: WAIT_MS });
    assert.strictEqual((await call('GET', `/queues/jobs?vhost=${VHOST}`)).body.messages_ready, 0);
    const deadLetters = (await call('GET', `/queues/jobs.dlq/messages?vhost=${VHOST}`)).body.messages;
    assert.deepStrictEqual(deadLetters.map((m) => m.value), ['job-1'], JSON.stringify(deadLetters));

    // Remove the binding from the page.
    await page.click('#nav a[data-route="exchanges"]');
    await loaded('exchanges');
    await page.locator('table[data-table="bindings"] tbody tr', { hasText: 'jobs.dlq' }).locator('button').click();
    await page.click('#confirm-ok');
    await page.locator('table[data-table="bindings"] tbody tr', { hasText: 'jobs.dlq' }).waitFor({ state: 'detached', timeout: WAIT_MS });
    const left = (await call('GET', `/bindings?vhost=${VHOST}`)).body;
    assert.ok(!left.some((b) => b.source === 'jobs.dlx'), JSON.stringify(left));

    // Delete the staging dead-letter queue from its page; the list comes back in the same vhost.
    await page.goto(`${base}/#/queues/jobs.dlq?vhost=${VHOST}`);
    await page.locator('.view[data-page="queues"][data-view="detail"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.click('button[data-action="delete-queue"]');
    await page.click('#confirm-ok');
    await page.locator('.view[data-page="queues"][data-view="list"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.locator('.page-head p', { hasText: 'in vhost staging' }).waitFor({ timeout: WAIT_MS });
    assert.strictEqual((await call('GET', `/queues/jobs.dlq?vhost=${VHOST}`)).status, 404);
    assert.strictEqual((await call('GET', '/queues/jobs')).status, 200, 'the / queue of the same name stays');

    // Delete the vhost from the Vhosts page: its queues go with it.
    await page.click('#nav a[data-route="vhosts"]');
    await loaded('vhosts');
    await page.locator(`table[data-table="vhosts"] tr[data-name="${VHOST}"] button[data-action="delete-vhost"]`).click();
    await page.click('#confirm-ok');
    await page.locator(`table[data-table="vhosts"] tr[data-name="${VHOST}"]`).waitFor({ state: 'detached', timeout: WAIT_MS });
    assert.strictEqual((await call('GET', `/queues/jobs?vhost=${VHOST}`)).status, 404);
    assert.strictEqual((await call('GET', '/queues/jobs')).status, 200, 'the / queue of the same name stays');

    assert.deepStrictEqual(problems, [], 'the console logged errors');
    await page.close();
  } finally {
    await browser.close();
  }
  console.log(`ok (screenshots in ${screenshots})`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
