// Conversation, as phones on a LAN-like name use it (not a secure context): answering
// one message, reacting once per device, taking back or fixing one's own, and
// finding an old message. Each page shows every message as it now stands, also
// after a reload and a restart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launch, phone, post, screenshots, setHidden, startServer, until } from './harness.mjs';
import { photo } from './photo-fixture.mjs';

let browser;
let server;
let lan;
const port = (s) => s.addr.split(':').pop();
const lanOf = (s) => `http://chat.lan:${port(s)}/`;
before(async () => {
  server = await startServer(['--backlog', '50']);
  lan = lanOf(server);
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open(name, url = lan) {
  const context = await browser.newContext(phone);
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#status[data-state="connected"]').waitFor();
  if (name) await page.fill('#name', name);
  return page;
}

/** The message whose own text (not a quote of it) says `text`. */
const bubble = (page, text) => page.locator('.msg[data-id]').filter({ has: page.locator('.text', { hasText: text }) });
async function say(page, text) {
  await page.fill('#message', text);
  await page.locator('#composer [type=submit]').click();
  await page.locator('.msg.own[data-id]', { hasText: text }).waitFor();
}
/** Opens a message's menu as a phone does: a long press (the browser's context menu). */
async function menu(page, text) {
  await bubble(page, text).locator('.text').dispatchEvent('contextmenu');
  const box = page.locator('.actions');
  await box.waitFor();
  return box;
}
const chip = (page, text, emoji) => bubble(page, text).locator('.reactions button', { hasText: emoji });
const chips = (page, text) => bubble(page, text).locator('.reactions button').allTextContents();
const shot = (page, name) => page.screenshot({ path: join(screenshots, `conversation-${name}.png`) });

/** Where an element is against the scroller's view: 'above', 'in' or 'below'. */
const placeOf = (locator) => locator.evaluate((el) => {
  const view = document.getElementById('scroller').getBoundingClientRect();
  const box = el.getBoundingClientRect();
  if (box.bottom <= view.top) return 'above';
  return box.top >= view.bottom ? 'below' : 'in';
});

/** Posts as a script, with more fields than `post` takes. */
async function postWith(s, fields) {
  const res = await fetch(`${s.url}message`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams(fields),
  });
  const body = await res.text();
  assert.equal(res.status, 201, body);
  return JSON.parse(body);
}

test('a reply shows its quote on the other phone, and a tap on it goes to an original 200 messages up', async () => {
  const ana = await open('Ana');
  const bo = await open('Bo');
  await say(ana, 'Where do we meet?');
  await bubble(bo, 'Where do we meet?').waitFor();
  // Bo answers it: Reply in the message's menu, from the keyboard this time.
  await bubble(bo, 'Where do we meet?').locator('.act').focus();
  await bo.keyboard.press('Enter');
  await bo.locator('.actions [role=menuitem]', { hasText: 'Reply' }).click();
  assert.equal(await bo.locator('#context-text').textContent(), 'Reply to Ana: Where do we meet?');
  await say(bo, 'At the gate');
  const quote = bubble(ana, 'At the gate').locator('.quote');
  await quote.waitFor();
  assert.equal(await quote.locator('.q-who').textContent(), 'Ana');
  assert.equal(await quote.locator('.q-text').textContent(), 'Where do we meet?');
  assert.equal(await bo.locator('#context').isHidden(), true, 'the box answers nothing more');
  await shot(ana, 'reply');

  // A photo answered: its thumbnail in the box and in the quote.
  await ana.setInputFiles('#attach', { name: 'gate.jpg', mimeType: 'image/jpeg', buffer: await photo(ana) });
  await ana.locator('#attached .chip', { hasText: 'gate.jpg' }).waitFor();
  await say(ana, 'this gate');
  await (await menu(bo, 'this gate')).locator('[role=menuitem]', { hasText: 'Reply' }).click();
  assert.equal(await bo.locator('#context-text').textContent(), 'Reply to Ana: this gate');
  assert.match(await bo.locator('#context img').getAttribute('src'), /^\/media\/[0-9a-f]{32}$/);
  await say(bo, 'the red one?');
  const thumb = bubble(ana, 'the red one?').locator('.quote img');
  await thumb.waitFor();
  assert.equal(await thumb.evaluate((img) => img.complete && img.naturalWidth > 0), true, 'the thumbnail loads');

  // An original far up: a new phone sees the reply at the end, taps its quote, and
  // is taken up 200 messages to it.
  const original = await post(server, 'Bring the tent poles', 'Cy');
  for (let i = 0; i < 200; i += 1) await post(server, `chatter ${i}`, 'Dee');
  await postWith(server, { message: 'Got them', name: 'Eve', reply: original.id });
  const fresh = await open('Fay');
  const farQuote = bubble(fresh, 'Got them').locator('.quote');
  await farQuote.waitFor();
  assert.equal(await bubble(fresh, 'Bring the tent poles').count(), 0, 'not loaded yet');
  await farQuote.click();
  const target = bubble(fresh, 'Bring the tent poles');
  await target.waitFor();
  assert.equal(await until(() => placeOf(target), 'in'), 'in');
  assert.match(await target.getAttribute('class'), /\bfound\b/);

  // Ana takes her question back: the answer's quote says so on every page.
  const box = await menu(ana, 'Where do we meet?');
  await box.locator('button', { hasText: 'Delete' }).click();
  await box.locator('button', { hasText: 'Delete for everyone?' }).click();
  await bo.locator('.msg.deleted .text', { hasText: 'message deleted' }).waitFor();
  await bubble(bo, 'At the gate').locator('.quote.q-gone', { hasText: 'deleted message' }).waitFor();
  for (const p of [ana, bo, fresh]) await p.context().close();
});

test('three devices react, one takes it back: counts right on every page, after a reload and a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanchat-reactions-'));
  let s = await startServer(['--data-dir', dir]);
  const url = lanOf(s);
  try {
    const pages = [];
    for (const name of ['Ana', 'Bo', 'Cy']) pages.push(await open(name, url));
    const [ana, bo, cy] = pages;
    await say(ana, 'Pizza at 7?');
    for (const p of pages) {
      await bubble(p, 'Pizza at 7?').waitFor();
      const box = await menu(p, 'Pizza at 7?');
      await box.locator('[aria-label="React 👍"]').click();
    }
    for (const p of pages) assert.deepEqual(await until(() => chips(p, 'Pizza at 7?'), ['👍 3']), ['👍 3']);
    // A reaction is not news: Bo's hidden page counts nothing new for it.
    await setHidden(bo, true);
    // Cy taps the chip: taken back.
    await chip(cy, 'Pizza at 7?', '👍').click();
    for (const p of pages) assert.deepEqual(await until(() => chips(p, 'Pizza at 7?'), ['👍 2']), ['👍 2']);
    assert.equal(await bo.title(), 'lanchat', 'a reaction is not an unread message');
    assert.equal(await chip(ana, 'Pizza at 7?', '👍').getAttribute('aria-pressed'), 'true', 'her own');
    assert.equal(await chip(cy, 'Pizza at 7?', '👍').getAttribute('aria-pressed'), 'false');
    // Who: a long press on the chip.
    await chip(cy, 'Pizza at 7?', '👍').dispatchEvent('contextmenu');
    assert.equal(await bubble(cy, 'Pizza at 7?').locator('.problem').textContent(), '👍 Ana, Bo');
    await shot(ana, 'reactions');
    // The same tap sent twice (a retried request) changes nothing.
    const twice = await ana.evaluate(async (id) => {
      const body = new URLSearchParams({ emoji: '👍', on: '1', name: 'Ana', device: localStorage.getItem('lanchat.device') });
      const go = () => fetch(`/message/${id}/react`, { method: 'POST', body, headers: { Accept: 'application/json' } }).then((r) => r.json());
      await go();
      return (await go()).message.reactions;
    }, await bubble(ana, 'Pizza at 7?').getAttribute('data-id'));
    assert.equal(twice[0].by.length, 2);

    await cy.reload();
    assert.deepEqual(await until(() => chips(cy, 'Pizza at 7?'), ['👍 2']), ['👍 2']);
    await s.stop();
    s = await startServer(['--data-dir', dir], s.addr);
    await ana.reload();
    assert.deepEqual(await until(() => chips(ana, 'Pizza at 7?'), ['👍 2']), ['👍 2']);
    assert.equal(await chip(ana, 'Pizza at 7?', '👍').getAttribute('aria-pressed'), 'true');
    // A message no longer kept takes no reaction: 404 with its code.
    const gone = await ana.evaluate(async () => {
      const body = new URLSearchParams({ emoji: '👍', device: localStorage.getItem('lanchat.device') });
      const res = await fetch('/message/1-999999/react', { method: 'POST', body, headers: { Accept: 'application/json' } });
      return [res.status, (await res.json()).error];
    });
    assert.deepEqual(gone, [404, 'no_such_message']);
    for (const p of pages) await p.context().close();
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a device edits and deletes its own message, and another device cannot (403 with its code)', async () => {
  const ana = await open('Ana');
  const bo = await open('Bo');
  await say(ana, 'Meet at 6');
  await bubble(bo, 'Meet at 6').waitFor();
  // Bo's menu on Ana's message offers no Edit or Delete, and the server refuses
  // them to his device all the same.
  const theirs = await menu(bo, 'Meet at 6');
  assert.deepEqual(await theirs.locator('[role=menuitem]:not([aria-label])').allTextContents(), ['Reply']);
  await bo.keyboard.press('Escape');
  await theirs.waitFor({ state: 'detached' });
  const id = await bubble(bo, 'Meet at 6').getAttribute('data-id');
  const refused = await bo.evaluate(async (target) => {
    const device = localStorage.getItem('lanchat.device');
    const ask = async (what, fields) => {
      const res = await fetch(`/message/${target}/${what}`, {
        method: 'POST', headers: { Accept: 'application/json' }, body: new URLSearchParams({ device, ...fields }),
      });
      return [res.status, (await res.json()).error];
    };
    return [await ask('edit', { message: 'Meet at 9' }), await ask('delete', {})];
  }, id);
  assert.deepEqual(refused, [[403, 'not_your_message'], [403, 'not_your_message']]);

  // An edit that cannot reach the server is not lost: the text comes back to the box.
  await ana.route('**/edit', (route) => route.abort());
  await (await menu(ana, 'Meet at 6')).locator('[role=menuitem]', { hasText: 'Edit' }).click();
  await ana.fill('#message', 'Meet at 6:30');
  await ana.locator('#composer [type=submit]').click();
  await bubble(ana, 'Meet at 6').locator('.problem', { hasText: 'Not edited' }).waitFor();
  assert.equal(await ana.inputValue('#message'), 'Meet at 6:30');
  assert.equal(await ana.locator('#context-text').textContent(), 'Editing your message');
  await ana.locator('#context-close').click();
  assert.equal(await ana.inputValue('#message'), '');
  await ana.unroute('**/edit');

  // Ana fixes it: the text goes into the box, Send saves it; everyone sees "edited".
  const mine = await menu(ana, 'Meet at 6');
  await shot(ana, 'menu');
  await mine.locator('[role=menuitem]', { hasText: 'Edit' }).click();
  assert.equal(await ana.inputValue('#message'), 'Meet at 6');
  await ana.fill('#message', 'Meet at 7');
  await ana.locator('#composer [type=submit]').click();
  const edited = bubble(bo, 'Meet at 7');
  await edited.waitFor();
  assert.equal(await edited.locator('.edited').textContent(), 'edited');
  assert.equal(await bubble(bo, 'Meet at 6').count(), 0);
  assert.equal(await ana.inputValue('#message'), '', 'the box is the box again');
  await bo.reload();
  await bubble(bo, 'Meet at 7').locator('.edited').waitFor();

  // And takes it back: "message deleted" in its place, for everyone.
  const again = await menu(ana, 'Meet at 7');
  await again.locator('button', { hasText: 'Delete' }).click();
  await again.locator('button', { hasText: 'Delete for everyone?' }).click();
  const placeholder = bo.locator(`.msg[data-id="${id}"]`);
  await placeholder.locator('.text', { hasText: 'message deleted' }).waitFor();
  assert.equal(await bubble(bo, 'Meet at 7').count(), 0);
  await bo.reload();
  await bo.locator(`.msg.deleted[data-id="${id}"]`).waitFor();
  await ana.context().close();
  await bo.context().close();
});

test('a search with accents and capitals finds a message 3,000 back and opens the chat there', async () => {
  const big = await startServer(['--history', '5000', '--backlog', '50']);
  try {
    await post(big, 'Le WiFi du café: mot de passe Tür-7', 'Host');
    for (let i = 0; i < 3000; i += 1) await post(big, `message ${i}`, 'Crowd');
    const page = await open('Gil', lanOf(big));
    await page.locator('#search-open').click();
    await page.fill('.search input', 'wïfi CAFE');
    const result = page.locator('.search .results button', { hasText: 'mot de passe' });
    await result.waitFor();
    assert.equal(await page.locator('.search .results li').count(), 1);
    await shot(page, 'search');
    // Many found: the newest 50, then more on request.
    await page.fill('.search input', 'MESSAGE');
    await until(() => page.locator('.search .results .text').count(), 50);
    assert.equal(await page.locator('.search [role=status]').textContent(), '50+ found, newest first');
    assert.equal(await page.locator('.search .results .text').first().textContent(), 'message 2999');
    await page.locator('.search .more').click();
    assert.equal(await until(() => page.locator('.search .results .text').count(), 100), 100);
    assert.equal(await page.locator('.search .results .text').nth(50).textContent(), 'message 2949');
    await page.fill('.search input', 'wïfi CAFE');
    await result.waitFor();
    await result.click();
    await page.locator('.search').waitFor({ state: 'detached' });
    const found = bubble(page, 'Le WiFi du café');
    assert.equal(await until(() => placeOf(found), 'in'), 'in');
    assert.match(await found.getAttribute('class'), /\bfound\b/);
    await page.context().close();
  } finally {
    await big.stop();
  }
});
