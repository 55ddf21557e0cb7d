// The moderator's page: opened with the moderator link, it shows a menu on every
// message to delete it or mute its sender; every other page loses a deleted message
// at once, and marks the host's posts. Served on a LAN-like name (chat.lan, not a
// secure context), as phones open it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, phone, post, screenshots, startServer, texts, until } from './harness.mjs';

let browser;
let server;
let origin;
before(async () => {
  server = await startServer(['--mod-key', 'host-only']);
  const port = server.addr.split(':').pop();
  origin = `http://chat.lan:${port}`;
  browser = await launch([`--host-resolver-rules=MAP chat.lan 127.0.0.1`]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(path = '/') {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  await page.goto(`${origin}${path}`);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}

test('the host deletes a message from a phone and it leaves every page; guests see no menu', async () => {
  const host = await open('/?mod=host-only');
  assert.equal(new URL(host.url()).search, '', 'the key leaves the address bar');
  const guest = await open('/');
  await post(server, 'keep this');
  await post(server, 'my address is 1 Main St');
  await guest.locator('.msg[data-id]', { hasText: '1 Main St' }).waitFor();

  assert.equal(await guest.locator('.mod-toggle').count(), 0, 'no menu for a guest');
  const bad = host.locator('.msg[data-id]', { hasText: '1 Main St' });
  await bad.locator('.mod-toggle').tap();
  await bad.getByRole('button', { name: 'Delete' }).tap();

  assert.deepEqual(await until(() => texts(guest), ['keep this']), ['keep this']);
  assert.deepEqual(await until(() => texts(host), ['keep this']), ['keep this']);
  // A page opened later, and a reload, never show it.
  const late = await open('/');
  await late.locator('.msg[data-id]', { hasText: 'keep this' }).waitFor();
  await guest.reload();
  await guest.locator('.msg[data-id]', { hasText: 'keep this' }).waitFor();
  assert.deepEqual(await texts(late), ['keep this']);
  assert.deepEqual(await texts(guest), ['keep this']);
  await host.screenshot({ path: join(screenshots, 'moderator-phone.png') });
  await Promise.all([host, guest, late].map((p) => p.context().close()));
});

test('a muted sender is told for how long; the host\'s posts carry the mark', async () => {
  const host = await open('/?mod=host-only');
  const guest = await open('/');
  await guest.fill('#name', 'host');
  await guest.fill('#message', 'free pizza in room 4');
  await guest.click('#composer [type=submit]');
  const spam = host.locator('.msg[data-id]', { hasText: 'free pizza' });
  await spam.locator('.mod-toggle').tap();
  await spam.getByRole('button', { name: /Mute sender/ }).tap();
  await spam.locator('.problem', { hasText: 'Sender muted for 10 minutes' }).waitFor();

  await guest.fill('#message', 'more pizza');
  await guest.click('#composer [type=submit]');
  await guest.locator('.msg.failed', { hasText: 'more pizza' })
    .locator('.problem', { hasText: 'muted for 10 minutes by the host' }).waitFor();

  await host.fill('#name', 'Sam');
  await host.fill('#message', 'welcome, everyone');
  await host.click('#composer [type=submit]');
  const real = guest.locator('.msg[data-id]', { hasText: 'welcome, everyone' });
  await real.locator('.host', { hasText: 'host' }).waitFor();
  // Someone who calls themself "host" gets no mark.
  const fake = host.locator('.msg[data-id]', { hasText: 'free pizza' });
  assert.equal(await fake.locator('.host').count(), 0);
  assert.equal(await fake.locator('.who').textContent(), 'host');
  await fake.locator('.mod-toggle').tap();
  await host.screenshot({ path: join(screenshots, 'moderator-menu.png') });
  await Promise.all([host, guest].map((p) => p.context().close()));
});
