// A phone's keyboard and a phone's eyes: Enter on a touch keyboard breaks the line
// (Send sends), on a hardware keyboard it sends; no input smaller than 16 px (iOS
// zooms into those); a counter near the limit that counts as the server does; a
// header that stays one line; and an automated accessibility audit (axe-core) with
// no violations, light and dark, phone and desktop.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { desktop, launch, phone, post, startServer } from './harness.mjs';

const axe = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let browser;
let server;
let lan;
before(async () => {
  server = await startServer(['--mod-key', 'host-only']);
  lan = `http://chat.lan:${server.addr.split(':').pop()}/`;
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(options, path = '') {
  const page = await (await browser.newContext(options)).newPage();
  await page.goto(lan + path);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}

test('Enter breaks the line on a touch keyboard and sends on a hardware one', async () => {
  const mobile = await open(phone);
  await mobile.fill('#message', 'line one');
  await mobile.press('#message', 'Enter');
  await mobile.keyboard.type('line two');
  assert.equal(await mobile.inputValue('#message'), 'line one\nline two');
  await mobile.locator('#composer [type=submit]').tap();
  await mobile.locator('.msg[data-id] .text', { hasText: 'line two' }).waitFor();
  assert.equal(await mobile.locator('#message').getAttribute('enterkeyhint'), 'enter');

  const laptop = await open(desktop);
  await laptop.fill('#message', 'first');
  await laptop.press('#message', 'Shift+Enter');
  await laptop.keyboard.type('second');
  await laptop.press('#message', 'Enter');
  await laptop.locator('.msg[data-id] .text', { hasText: 'second' }).waitFor();
  assert.equal(await laptop.locator('.msg[data-id] .text', { hasText: 'second' }).last().textContent(), 'first\nsecond');
  assert.equal(await laptop.inputValue('#message'), '');
  await mobile.context().close();
  await laptop.context().close();
});

test('every input is at least 16 px', async () => {
  const page = await open(phone);
  await page.locator('#prefs summary').tap();
  const sizes = await page.evaluate(() => [...document.querySelectorAll('input:not([type=checkbox]), textarea')]
    .map((e) => [e.id, parseFloat(getComputedStyle(e).fontSize)]));
  for (const [id, size] of sizes) assert.ok(size >= 16, `#${id}: ${size} px`);
  await page.context().close();
});

test('a counter near the limit counts as the server does, and over it says by how much', async () => {
  const page = await open(phone);
  const counter = page.locator('#counter');
  await page.fill('#message', 'short');
  assert.equal(await counter.isHidden(), true);
  // Emoji: two UTF-16 units each, one character as the server counts.
  await page.fill('#message', '\u{1f600}'.repeat(1850));
  assert.equal(await counter.textContent(), '1850 / 2000');
  // A paste over the limit is kept whole, and the counter says so.
  await page.locator('#message').focus();
  await page.evaluate(() => {
    const box = document.getElementById('message');
    box.value = '\u{1f600}'.repeat(2100);
    box.dispatchEvent(new Event('input', { bubbles: true }));
  });
  assert.equal(await counter.textContent(), '100 over the limit of 2000');
  assert.equal([...await page.inputValue('#message')].length, 2100, 'nothing cut');
  await page.locator('#composer [type=submit]').tap();
  assert.match(await page.evaluate(() => document.getElementById('message').validationMessage), /100 characters over/);
  await page.context().close();
});

test('the header stays on one line while reconnecting, at 320 px', async () => {
  const page = await open({ ...phone, viewport: { width: 320, height: 640 } });
  await page.fill('#name', 'Maximilian-Alexander');
  await page.evaluate(() => {
    const s = document.getElementById('status');
    s.dataset.state = 'reconnecting';
    s.textContent = 'reconnecting';
  });
  const bar = await page.locator('.bar').evaluate((b) => ({
    height: b.getBoundingClientRect().height,
    overflow: b.scrollWidth - b.clientWidth,
    h1: b.querySelector('h1').getBoundingClientRect().height,
  }));
  assert.ok(bar.height < 2.2 * bar.h1 + 20, `one line: ${JSON.stringify(bar)}`);
  assert.ok(bar.overflow <= 0, `nothing sticks out: ${JSON.stringify(bar)}`);
  await page.context().close();
});

test('no accessibility violations, light and dark, phone and desktop, guest and host', async () => {
  // Names of several hues, each in the colour of its own.
  for (const name of ['Ada', 'Bo', 'Cy', 'Dee', 'Eve', 'Yusuf', 'Zoë']) await post(server, `hello from ${name}`, name);
  const found = [];
  for (const [device, options] of [['phone', phone], ['desktop', desktop]]) {
    for (const scheme of ['light', 'dark']) {
      for (const path of ['', '?mod=host-only']) {
        const page = await open({ ...options, colorScheme: scheme }, path);
        await page.fill('#message', 'my own message');
        await page.click('#composer [type=submit]');
        await page.locator('.msg.own[data-id]').last().waitFor();
        await page.fill('#message', 'a draft that is long enough '.repeat(70));
        await page.locator('#prefs summary').click();
        await page.addScriptTag({ content: axe });
        const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
        for (const v of result.violations) {
          for (const node of v.nodes) found.push(`${device} ${scheme} ${path || 'guest'}: ${v.id}: ${node.target.join(' ')}: ${node.failureSummary}`);
        }
        await page.context().close();
      }
    }
  }
  assert.deepEqual(found, []);
});
