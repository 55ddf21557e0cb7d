// Nothing new goes unnoticed: with the tab hidden, new messages count in the title
// and as a dot on the icon until it is seen; muted, only messages that name you
// count; sound and vibration when turned on; system notifications only where the
// browser has them (not on a LAN address over http).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { desktop, launch, phone, post, setHidden, startServer, until } from './harness.mjs';

let browser;
let server;
let lan;
before(async () => {
  server = await startServer();
  lan = `http://chat.lan:${server.addr.split(':').pop()}/`;
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(options = phone, url = lan) {
  const context = await browser.newContext(options);
  // A stand-in for the speaker and the vibration motor, which headless Chromium
  // lacks: each records what the page asked of it.
  await context.addInitScript(() => {
    window.asked = { tones: 0, vibrations: 0 };
    navigator.vibrate = () => { window.asked.vibrations += 1; return true; };
    window.AudioContext = class {
      constructor() { this.state = 'running'; this.currentTime = 0; this.destination = {}; }
      resume() { return Promise.resolve(); }
      createGain() { return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect: (x) => x }; }
      createOscillator() {
        return { frequency: {}, connect: (x) => x, start: () => { window.asked.tones += 1; }, stop() {} };
      }
    };
  });
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}


const icon = (page) => page.locator('link[rel="icon"]').first().getAttribute('href');

test('hidden, new messages count in the title and on the icon until the tab is seen', async () => {
  await post(server, 'before, already seen');
  const page = await open();
  await page.locator('.msg[data-id]', { hasText: 'already seen' }).waitFor();
  assert.equal(await page.title(), 'lanchat', 'what a page opens with is not new');
  await setHidden(page, true);
  await post(server, 'one');
  await post(server, 'two');
  assert.equal(await until(() => page.title(), '(2) lanchat'), '(2) lanchat');
  assert.match(await until(async () => (await icon(page)).slice(0, 22), 'data:image/png;base64,'), /^data:image\/png/);
  await setHidden(page, false);
  assert.equal(await page.title(), 'lanchat');
  assert.match(await icon(page), /\/icon\.svg$/);
  // Own messages never count.
  await setHidden(page, true);
  await page.fill('#message', 'my own');
  await page.click('#composer [type=submit]');
  await page.locator('.msg[data-id]', { hasText: 'my own' }).waitFor();
  assert.equal(await page.title(), 'lanchat');
  await page.context().close();
});

test('muted, only a message that names you counts; sound and vibration when turned on', async () => {
  const page = await open();
  await page.fill('#name', 'Dee');
  await page.locator('#prefs summary').tap();
  await page.getByLabel(/Mute/).check();
  await page.getByLabel(/Sound and vibration/).check();
  const afterTap = await page.evaluate(() => ({ ...window.asked }));
  assert.equal(afterTap.tones, 1, 'turning it on plays the sound once, as a sample');
  await setHidden(page, true);
  await post(server, 'to everyone');
  await post(server, 'see you, @dee!');
  await post(server, 'not @deep, someone else');
  await page.locator('.msg[data-id]', { hasText: 'someone else' }).waitFor();
  assert.equal(await page.title(), '(1) lanchat');
  assert.equal(await page.locator('.msg.mention').count(), 1);
  assert.match(await page.locator('.msg.mention').textContent(), /@dee!/);
  const asked = await page.evaluate(() => window.asked);
  assert.deepEqual(asked, { tones: 2, vibrations: 2 }, 'the sample and the mention');
  await page.reload();
  await page.locator('#prefs summary').tap();
  assert.equal(await page.getByLabel(/Mute/).isChecked(), true, 'remembered');
  await page.context().close();
});

test('system notifications are offered only where the browser has them', async () => {
  const onLan = await open(phone, lan);
  await onLan.locator('#prefs summary').tap();
  assert.equal(await onLan.evaluate(() => window.isSecureContext), false);
  assert.equal(await onLan.getByLabel('System notifications').isVisible(), false);
  await onLan.context().close();
  const local = await open(desktop, server.url);
  await local.locator('#prefs summary').click();
  assert.equal(await local.getByLabel('System notifications').isVisible(), true);
  await local.context().close();
});
