// The page as people use it: two devices chatting, sending states, names, text safety.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { desktop, ids, launch, phone, post, startServer, texts } from './harness.mjs';

let browser;
let server;
before(async () => {
  browser = await launch();
  server = await startServer();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function openChat(options, name) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await page.goto(server.url);
  await page.locator('#status[data-state="connected"]').waitFor();
  if (name) await page.fill('#name', name);
  return page;
}

test('a phone and a desktop chat both ways without reloading', async () => {
  const laptop = await openChat(desktop, 'Ada');
  const mobile = await openChat(phone, 'Bo');
  await laptop.evaluate(() => { window.notReloaded = true; });

  await laptop.fill('#message', 'hello from the laptop');
  await laptop.click('#composer [type=submit]');
  assert.equal(await laptop.inputValue('#message'), '', 'the input clears');
  await mobile.locator('.msg .text', { hasText: 'hello from the laptop' }).waitFor();

  await mobile.fill('#message', 'hi from the phone');
  await mobile.locator('#composer button[type=submit]').tap();
  await laptop.locator('.msg .text', { hasText: 'hi from the phone' }).waitFor();

  for (const page of [laptop, mobile]) {
    assert.deepEqual(
      (await texts(page)).slice(-2),
      ['hello from the laptop', 'hi from the phone'],
    );
  }
  assert.equal(await laptop.evaluate(() => window.notReloaded), true, 'the list survives a send');

  // Own messages look different from others', with name and local time shown.
  const mine = laptop.locator('.msg', { hasText: 'hello from the laptop' });
  const theirs = laptop.locator('.msg', { hasText: 'hi from the phone' });
  assert.match(await mine.getAttribute('class'), /\bown\b/);
  assert.doesNotMatch(await theirs.getAttribute('class'), /\bown\b/);
  assert.equal(await theirs.locator('.who').textContent(), 'Bo');
  assert.match(await theirs.locator('time').textContent(), /\d{1,2}:\d{2}/);
  assert.notEqual(
    await mine.evaluate((e) => getComputedStyle(e).alignSelf + getComputedStyle(e.querySelector('.text') || e).backgroundColor),
    await theirs.evaluate((e) => getComputedStyle(e).alignSelf + getComputedStyle(e.querySelector('.text') || e).backgroundColor),
    'own and others\' bubbles are styled differently',
  );
  await laptop.context().close();
  await mobile.context().close();
});

test('a slow message says sending…, and one that finds no server waits and goes out by itself', async () => {
  const page = await openChat(desktop, 'Cy');
  let release;
  const held = new Promise((r) => { release = r; });
  await page.route('**/message', async (route) => { await held; await route.continue(); });
  await page.fill('#message', 'slow one');
  await page.click('#composer [type=submit]');
  const slow = page.locator('.msg.pending', { hasText: 'slow one' });
  await slow.locator('.state', { hasText: 'sending…' }).waitFor({ timeout: 3000 });
  release();
  await page.locator('.msg[data-id]', { hasText: 'slow one' }).waitFor();
  assert.equal(await page.locator('.msg.pending').count(), 0);
  await page.unroute('**/message');

  await page.route('**/message', (route) => route.abort('internetdisconnected'));
  await page.fill('#message', 'lost wifi');
  await page.click('#composer [type=submit]');
  const waiting = page.locator('.msg.pending', { hasText: 'lost wifi' });
  await waiting.locator('.state', { hasText: /waiting for the/ }).waitFor();
  await page.unroute('**/message');
  // No button to press: it goes when the server answers again.
  await page.locator('.msg[data-id]', { hasText: 'lost wifi' }).waitFor();
  assert.equal(await page.locator('.msg.failed, .msg.pending').count(), 0);
  assert.equal((await texts(page)).filter((t) => t === 'lost wifi').length, 1);
  await page.context().close();
});

test('the server\'s reason shows when it refuses a message', async () => {
  const page = await openChat(desktop);
  // A control character: the page lets it through, the server does not.
  await page.fill('#message', 'bell \u0007 rings');
  await page.click('#composer [type=submit]');
  const failed = page.locator('.msg.failed');
  await failed.waitFor();
  assert.match(await failed.locator('.problem').textContent(), /control character/);
  await page.context().close();
});

test('the longest message goes through in any script, and a longer one stays in the box', async () => {
  const page = await openChat(phone);
  // 2,000 emoji: 4,000 UTF-16 units, 2,000 characters as the server counts them.
  const longest = '\u{1f600}'.repeat(2000);
  await page.fill('#message', longest);
  await page.click('#composer [type=submit]');
  const bubble = page.locator('.msg[data-id] .text', { hasText: '\u{1f600}\u{1f600}' }).last();
  await bubble.waitFor();
  assert.equal([...await bubble.textContent()].length, 2000);
  const over = '\u4e2d'.repeat(2001);
  await page.fill('#message', over);
  await page.click('#composer [type=submit]');
  assert.equal(await page.inputValue('#message'), over, 'kept, not sent');
  assert.match(await page.evaluate(() => document.getElementById('message').validationMessage), /2000/);
  await page.context().close();
});

test('sent too fast, a message says slow down and goes out by itself after the wait', async () => {
  const limited = await startServer(['--post-rate', '2/2s']);
  try {
    const context = await browser.newContext(phone);
    const page = await context.newPage();
    await page.goto(limited.url);
    await page.locator('#status[data-state="connected"]').waitFor();
    for (const text of ['one', 'two', 'three']) {
      await page.fill('#message', text);
      await page.click('#composer [type=submit]');
    }
    const third = page.locator('.msg', { hasText: 'three' });
    await third.locator('.state', { hasText: /Slow down: sending again in \d s/ }).waitFor();
    await page.locator('.msg[data-id]', { hasText: 'three' }).waitFor({ timeout: 5000 });
    assert.equal((await texts(page)).filter((t) => t === 'three').length, 1);
    assert.equal(await page.locator('.msg.pending, .msg.failed').count(), 0);
    await context.close();
  } finally {
    await limited.stop();
  }
});

test('the nickname is remembered across a reload and sent with messages', async () => {
  const page = await openChat(phone, 'Dee');
  await page.reload();
  assert.equal(await page.inputValue('#name'), 'Dee');
  await page.locator('#status[data-state="connected"]').waitFor();
  await page.fill('#message', 'named');
  await page.click('#composer [type=submit]');
  const bubble = page.locator('.msg[data-id]', { hasText: 'named' }).last();
  await bubble.waitFor();
  assert.equal(await bubble.locator('.who').textContent(), 'Dee');
  await page.context().close();
});

test('markup in a message is shown as text and never run', async () => {
  const sender = await openChat(desktop, '<b>bold</b>');
  const reader = await openChat(phone);
  const evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>';
  await sender.fill('#message', evil);
  await sender.click('#composer [type=submit]');
  const bubble = reader.locator('.msg[data-id]', { hasText: 'onerror' });
  await bubble.waitFor();
  assert.equal(await bubble.locator('.text').textContent(), evil);
  assert.equal(await bubble.locator('.who').textContent(), '<b>bold</b>');
  assert.equal(await reader.locator('#messages img, #messages script, #messages b').count(), 0);
  assert.equal(await reader.evaluate(() => window.pwned), undefined);
  assert.equal(await sender.evaluate(() => window.pwned), undefined);
  await sender.context().close();
  await reader.context().close();
});

test('long words wrap and the page never scrolls sideways at 320 px', async () => {
  const page = await openChat({ ...phone, viewport: { width: 320, height: 640 } });
  await post(server, 'https://example.com/' + 'a'.repeat(300));
  await page.locator('.msg .text', { hasText: 'aaaa' }).last().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  const box = await page.locator('#composer').boundingBox();
  assert.ok(box.y + box.height <= 640 + 1 && box.y > 640 - 200, 'input bar at the bottom');
  await page.context().close();
});

test('scrolled up, new messages show a hint instead of moving the list', async () => {
  const page = await openChat(phone);
  for (let i = 0; i < 40; i++) await post(server, `filler ${i}`);
  await page.locator('.msg .text', { hasText: 'filler 39' }).waitFor();
  await page.evaluate(() => { document.getElementById('scroller').scrollTop = 0; });
  await post(server, 'while you read');
  await page.locator('.msg .text', { hasText: 'while you read' }).waitFor();
  await page.locator('#new-hint').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => document.getElementById('scroller').scrollTop), 0);
  await page.locator('#new-hint').tap();
  await page.locator('#new-hint').waitFor({ state: 'hidden' });
  assert.ok(await page.locator('.msg .text', { hasText: 'while you read' }).isVisible());
  const atEnd = await page.evaluate(() => {
    const s = document.getElementById('scroller');
    return s.scrollHeight - s.scrollTop - s.clientHeight < 2;
  });
  assert.ok(atEnd, 'the hint scrolls to the newest');
  await page.context().close();
});

test('without JavaScript the form posts and the page comes back showing it', async () => {
  const context = await browser.newContext({ ...phone, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url);
  const reader = await openChat(desktop);
  await page.fill('#name', 'NoJS');
  await page.fill('#message', 'sent by a plain form, café & co');
  await Promise.all([page.waitForURL(server.url), page.click('#composer button[type=submit]')]);
  assert.equal(await page.title(), 'lanchat');
  const bubble = reader.locator('.msg[data-id]', { hasText: 'sent by a plain form' });
  await bubble.waitFor();
  assert.equal(await bubble.locator('.text').textContent(), 'sent by a plain form, café & co');
  assert.equal(await bubble.locator('.who').textContent(), 'NoJS');
  // And the page that came back shows it, with no script at all.
  const recent = page.frameLocator('iframe.recent-frame');
  const shown = recent.locator('.msg', { hasText: 'sent by a plain form' });
  await shown.waitFor();
  assert.equal(await shown.locator('.who').textContent(), 'NoJS');
  assert.equal(await shown.locator('.text').textContent(), 'sent by a plain form, café & co');
  await context.close();
  await reader.context().close();
});

test('without JavaScript a photo goes without a caption, and an empty form gets a reason', async () => {
  const context = await browser.newContext({ ...phone, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url);
  const reader = await openChat(desktop);
  // A 1×1 PNG, as a phone's gallery would hand over a file.
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
    'base64');
  await page.fill('#name', 'NoCaption');
  await page.setInputFiles('#attach', { name: 'dot.png', mimeType: 'image/png', buffer: png });
  await Promise.all([page.waitForURL(server.url), page.click('#composer button[type=submit]')]);
  const bubble = reader.locator('.msg[data-id]', { has: reader.locator('.who', { hasText: 'NoCaption' }) });
  await bubble.locator('.files img').waitFor();
  // Nothing chosen and nothing typed: the server says why, in words.
  await page.goto(server.url);
  const [answer] = await Promise.all([
    page.waitForNavigation(),
    page.click('#composer button[type=submit]'),
  ]);
  assert.equal(answer.status(), 400);
  assert.match(await page.textContent('body'), /the message is empty/);
  await context.close();
  await reader.context().close();
});

test('ids on the page are unique and in order', async () => {
  const page = await openChat(desktop);
  await page.locator('.msg[data-id]').first().waitFor();
  const shown = await ids(page);
  assert.ok(shown.length > 10, 'the history of the earlier tests is shown');
  assert.equal(new Set(shown).size, shown.length);
  const n = shown.map((id) => Number(id.split('-')[1]));
  assert.deepEqual(n, [...n].sort((a, b) => a - b));
  await page.context().close();
});
