// The console's login page in Debian's Chromium, driven by playwright-core,
// against a broker whose [auth] anonymous is "never": the console shows the
// login page instead of data; a wrong password is refused in the page; the
// right one opens the overview, whose sidebar names the user; the session
// cookie is HttpOnly (no script reads it) and the page keeps its
// Content-Security-Policy; logging out goes back to the login page.
//
//   node login_playwright.js SCREENSHOT_DIR CHROMIUM_EXECUTABLE USER PASSWORD
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const [screenshots, executablePath, user, password] = process.argv.slice(2);
assert.ok(screenshots && executablePath && user && password, 'usage: login_playwright.js SCREENSHOT_DIR CHROMIUM USER PASSWORD');
const base = `http://${process.env.CONVEYOR_HTTP}`;
const WAIT_MS = 30000;

async function main() {
  fs.mkdirSync(screenshots, { recursive: true });
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    let dialogs = 0;
    page.on('dialog', async (dialog) => {
      dialogs += 1;
      await dialog.dismiss();
    });
    const response = await page.goto(`${base}/#/queues`);
    assert.ok((response.headers()['content-security-policy'] || '').includes("script-src 'self'"), 'the page keeps its CSP');

    const username = page.locator('input[name="username"]');
    await username.waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: path.join(screenshots, 'login.png') });

    await username.fill(user);
    await page.locator('input[name="password"]').fill(`${password}-wrong`);
    await page.locator('button[type="submit"]').click();
    await page.locator('[data-login-error]', { hasText: 'Wrong user name or password.' }).waitFor({ timeout: WAIT_MS });

    await page.locator('input[name="password"]').fill(password);
    await page.locator('button[type="submit"]').click();
    // Back where it was sent from, with data from the API.
    await page.locator('.view[data-page="queues"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.locator(`#who [data-user="${user}"]`).waitFor({ timeout: WAIT_MS });
    assert.ok(!(await page.evaluate(() => document.cookie)).includes('conveyor_session'), 'the session cookie is HttpOnly');
    const cookies = await page.context().cookies();
    const session = cookies.find((cookie) => cookie.name === 'conveyor_session');
    assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
    await page.goto(`${base}/#/overview`);
    await page.locator('.view[data-page="overview"][data-loaded="true"]').waitFor({ timeout: WAIT_MS });
    await page.screenshot({ path: path.join(screenshots, 'logged-in.png') });

    await page.locator('#who button', { hasText: 'Log out' }).click();
    await page.locator('input[name="username"]').waitFor({ timeout: WAIT_MS });
    assert.strictEqual(dialogs, 0, 'no browser dialog (no Basic challenge to the console)');
    assert.deepStrictEqual(problems, []);
    console.log('ok');
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
