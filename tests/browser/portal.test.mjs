// Hotspot mode in Chromium: a phone that opens any site (or whose system probes one)
// lands on the chat, in what may be its sign-in sheet, and is told how to go on.
// Every host name maps to the server, as the hotspot's DNS answers every name.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, phone, screenshots, startServer } from './harness.mjs';

let browser;
let server;
let port;
before(async () => {
  server = await startServer(['--portal']);
  port = server.addr.split(':').pop();
  browser = await launch(['--host-resolver-rules=MAP * 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a probe or any site lands on the chat, and Continue lets the phone online', async () => {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  await page.goto(`http://captive.apple.com:${port}/hotspot-detect.html`);
  assert.equal(new URL(page.url()).host, `127.0.0.1:${port}`);
  await page.locator('#status[data-state="connected"]').waitFor();
  const note = page.locator('#portal-note');
  await note.waitFor();
  assert.match(await note.textContent(), new RegExp(`open http://127\\.0\\.0\\.1:${port}/`));
  await page.screenshot({ path: join(screenshots, 'portal-phone.png') });

  // The chat works in the sheet.
  await page.fill('#message', 'hello from the sign-in sheet');
  await page.click('#composer [type=submit]');
  await page.locator('.msg[data-id]', { hasText: 'from the sign-in sheet' }).waitFor();

  await page.getByRole('button', { name: 'Continue' }).tap();
  await note.getByText('You are connected').waitFor();
  assert.equal(new URL(page.url()).search, '');
  // Let in: the system's probe now gets its "online" answer.
  const probe = await context.newPage();
  const answer = await probe.goto(`http://captive.apple.com:${port}/hotspot-detect.html`);
  assert.equal(answer.status(), 200);
  assert.equal(new URL(probe.url()).host, `captive.apple.com:${port}`, 'no redirect');
  assert.equal(await probe.title(), 'Success');

  // A person who closed the sheet and types any address still finds the chat.
  const typed = await context.newPage();
  await typed.goto(`http://news.example:${port}/world/today.html`);
  await typed.locator('.msg[data-id]', { hasText: 'from the sign-in sheet' }).waitFor();
  assert.equal(await typed.locator('#portal-note').isHidden(), true);
  await context.close();
});

test('in a sign-in sheet without localStorage the chat still works', async () => {
  const context = await browser.newContext(phone);
  // Some captive-portal web views have no storage at all: every access throws.
  await context.addInitScript(() => {
    Object.defineProperty(window, 'localStorage', { get() { throw new DOMException('denied', 'SecurityError'); } });
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // Where a probe's redirect leads (this address was let in by the test above, so
  // the probe itself would now get Apple's "Success" page).
  await page.goto(`http://127.0.0.1:${port}/?portal`);
  await page.locator('#status[data-state="connected"]').waitFor();
  await page.locator('#portal-note').waitFor();
  await page.fill('#name', 'Sheet');
  await page.fill('#message', 'no storage here');
  await page.click('#composer [type=submit]');
  await page.locator('.msg[data-id]', { hasText: 'no storage here' }).waitFor();
  assert.deepEqual(errors, []);
  await context.close();
});
