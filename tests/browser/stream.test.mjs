// The stream as phones live it: server restarts, resets, several tabs, and how the
// page looks (screenshots for a person to check).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { desktop, ids, launch, phone, post, screenshots, startServer, texts, until } from './harness.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

const connected = (page) => page.locator('#status[data-state="connected"]').waitFor();

test('a server restart shows reconnecting, then connected, and loses or doubles nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lanchat-data-'));
  let server = await startServer(['--data-dir', dir]);
  const page = await (await browser.newContext(phone)).newPage();
  await page.goto(server.url);
  await connected(page);
  const before = [];
  for (let i = 0; i < 5; i++) before.push((await post(server, `before ${i}`)).id);
  assert.deepEqual(await until(() => ids(page), before), before);

  await server.kill();
  await page.locator('#status[data-state="reconnecting"]').waitFor();
  server = await startServer(['--data-dir', dir], server.addr);
  // Posted before the page is back: it must come by replay, once.
  const during = (await post(server, 'while you were away')).id;
  await connected(page);
  const later = (await post(server, 'after')).id;
  const want = [...before, during, later];
  assert.deepEqual(await until(() => ids(page), want), want);
  assert.deepEqual((await texts(page)).slice(-2), ['while you were away', 'after']);
  await page.context().close();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a server that lost its history sends a reset; what the page showed stays, marked as only here', async () => {
  let server = await startServer();
  const page = await (await browser.newContext(desktop)).newPage();
  await page.goto(server.url);
  await connected(page);
  await post(server, 'from the old run');
  await page.locator('.msg[data-id]', { hasText: 'from the old run' }).waitFor();
  await server.stop();
  await page.locator('#status[data-state="reconnecting"]').waitFor();
  server = await startServer([], server.addr);
  await post(server, 'from the new run');
  await connected(page);
  assert.deepEqual(await until(() => texts(page), ['from the new run']), ['from the new run']);
  // The old run's message is still on screen, above a note that says why it is
  // only on this device, and the new run's comes after the note.
  const order = await page.locator('#messages > li').evaluateAll((els) => els.map((e) =>
    e.matches('.msg.stale') ? `stale: ${e.querySelector('.text').textContent}`
      : e.matches('.day.restart') ? 'note' : e.matches('.msg') ? e.querySelector('.text').textContent : null)
    .filter(Boolean));
  assert.deepEqual(order, ['stale: from the old run', 'note', 'from the new run']);
  assert.match(await page.locator('.day.restart').textContent(), /only on this device/);
  await page.context().close();
  await server.stop();
});

test('a stream that goes silent past twice the heartbeat is reopened, and nothing is lost', async () => {
  const server = await startServer(['--heartbeat', '1s']);
  const page = await (await browser.newContext(phone)).newPage();
  let opened = 0;
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/events') opened += 1; });
  await page.goto(server.url);
  await connected(page);
  const first = (await post(server, 'before the silence')).id;
  await page.locator(`.msg[data-id="${first}"]`).waitFor();
  const before = opened;
  // The socket stays open but nothing arrives, not even a heartbeat.
  server.freeze();
  assert.equal(await until(() => opened > before, true, 10000), true, 'the page reopened its stream');
  server.thaw();
  const after = (await post(server, 'after the silence')).id;
  await page.locator(`.msg[data-id="${after}"]`).waitFor();
  await connected(page);
  assert.deepEqual((await ids(page)).slice(-2), [first, after]);
  await page.context().close();
  await server.stop();
});

/** Opens `n` tabs of one browser (one context) and waits until all are connected. */
async function tabs(server, n, options = phone, init) {
  const context = await browser.newContext(options);
  if (init) await context.addInitScript(init);
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = await context.newPage();
    page.streams = 0;
    page.on('request', (r) => { if (new URL(r.url()).pathname === '/events') page.streams += 1; });
    await page.goto(server.url);
    pages.push(page);
  }
  for (const page of pages) await connected(page);
  return { context, pages };
}

const onlineOf = (page) => page.locator('#online').textContent();

for (const [label, init] of [
  ['Web Locks', null],
  // Plain http on a LAN address is not a secure context: no navigator.locks there.
  ['a localStorage lease (no Web Locks)', () => { delete Navigator.prototype.locks; }],
]) {
  test(`several tabs share one stream, led by ${label}`, async () => {
    const server = await startServer(['--heartbeat', '1s']);
    let context;
    // Stopped whatever happens: a server left running would keep the test run open.
    try {
      // Each new tab asks the leader for what it has shown; the others must not
      // show those messages twice.
      const earlier = (await post(server, 'before the tabs opened')).id;
      let pages;
      ({ context, pages } = await tabs(server, 3, phone, init));
      if (init) assert.equal(await pages[0].evaluate(() => 'locks' in navigator), false);
      for (const page of pages) assert.equal(await until(() => onlineOf(page), '1 online'), '1 online');

      await pages[2].fill('#message', `from tab 3 via ${label}`);
      await pages[2].click('#composer [type=submit]');
      for (const page of pages) {
        await page.locator('.msg[data-id]', { hasText: 'from tab 3' }).waitFor();
      }
      assert.match(await pages[0].locator('.msg', { hasText: 'from tab 3' }).getAttribute('class'), /\bown\b/);

      // The leader goes away: another tab takes over the stream.
      const leader = await leaderOf(pages);
      await pages[leader].close();
      const rest = pages.filter((_, i) => i !== leader);
      const { id } = await post(server, 'after the leader left');
      for (const page of rest) {
        await page.locator(`.msg[data-id="${id}"]`).waitFor({ timeout: 15000 });
      }
      assert.equal(await until(() => onlineOf(rest[0]), '1 online'), '1 online');
      for (const page of rest) {
        const shown = await ids(page);
        assert.equal(shown[0], earlier);
        assert.equal(new Set(shown).size, shown.length, `no message twice: ${shown}`);
        assert.equal(shown.length, 3);
      }
    } finally {
      await context?.close();
      await server.stop();
    }
  });
}

/** Which page holds the EventSource: the one that asked for /events. */
async function leaderOf(pages) {
  const leaders = pages.flatMap((page, i) => (page.streams > 0 ? [i] : []));
  assert.equal(leaders.length, 1, 'exactly one tab opened a stream');
  return leaders[0];
}

test('with an access key, the link from the QR code lets a phone in and a bare URL does not', async () => {
  const server = await startServer(['--key', 'tea-time_42']);
  const stranger = await (await browser.newContext(phone)).newPage();
  const refused = await stranger.goto(server.url);
  assert.equal(refused.status(), 401);
  assert.match(await stranger.locator('h1').textContent(), /needs its key/);

  const guest = await (await browser.newContext(phone)).newPage();
  await guest.goto(`${server.url}?key=tea-time_42`);
  assert.equal(new URL(guest.url()).search, '', 'the key leaves the address bar');
  await connected(guest);
  await guest.fill('#message', 'in with the key');
  await guest.click('#composer [type=submit]');
  await guest.locator('.msg[data-id]', { hasText: 'in with the key' }).waitFor();
  assert.equal(await guest.evaluate(() => document.cookie), '', 'scripts cannot read the key');
  await guest.reload();
  await connected(guest);
  await stranger.context().close();
  await guest.context().close();
  await server.stop();
});

test('screenshots of the phone and desktop views, light and dark', async () => {
  const server = await startServer();
  await post(server, 'Dinner at 7? I\'ll bring bread 🍞', 'Sam');
  await post(server, 'Yes! Who has the key to the bike shed? It should be on the hook by the door but it isn\'t.', 'Kim');
  await post(server, 'https://example.com/a/very/long/link/that/must/wrap/somewhere/on/a/narrow/phone/screen', 'Sam');
  const backgrounds = new Set();
  for (const [name, options] of [['phone', phone], ['desktop', desktop]]) {
    for (const scheme of ['light', 'dark']) {
      const page = await (await browser.newContext({ ...options, colorScheme: scheme })).newPage();
      await page.goto(server.url);
      await connected(page);
      await page.fill('#name', 'Kim');
      await page.locator('.msg[data-id]').nth(2).waitFor();
      const shown = await page.locator('.msg[data-id]').count();
      await page.fill('#message', 'On my way');
      await page.click('#composer [type=submit]');
      await page.locator('.msg[data-id]').nth(shown).waitFor();
      await page.fill('#message', 'Typing…');
      const file = join(screenshots, `${name}-${scheme}.png`);
      await page.screenshot({ path: file });
      backgrounds.add(`${scheme}:${await page.evaluate(() => getComputedStyle(document.body).backgroundColor)}`);
      await page.context().close();
    }
  }
  // The page follows prefers-color-scheme: one background per scheme, not one for both.
  const byScheme = (scheme) => [...backgrounds].filter((b) => b.startsWith(scheme)).map((b) => b.split(':')[1]);
  assert.equal(new Set(byScheme('light')).size, 1);
  assert.notDeepEqual(byScheme('light'), byScheme('dark'));
  console.log(`screenshots written to ${screenshots}`);
  await server.stop();
});
