// A conversation people can read: a separator when the day changes and the full
// date on a tap, links that open safely, a colour per name, messages grouped under
// one name, right-to-left text, an empty chat that says what to do, long names cut
// with an ellipsis, and older messages loaded as the list is scrolled up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { desktop, ids, launch, phone, post, startServer, texts, until } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
});

async function open(server, options = phone) {
  const page = await (await browser.newContext(options)).newPage();
  await page.goto(`http://chat.lan:${server.addr.split(':').pop()}/`);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}

const DAY = 24 * 3600 * 1000;

test('days are separated, the full date shows on a tap, one person\'s run shares one name', async () => {
  // A history written days ago: the times a server gave then.
  const dir = mkdtempSync(join(tmpdir(), 'lanchat-reading-'));
  const now = Date.now();
  const line = (n, name, text, time) => JSON.stringify({ id: `7-${n}`, name, text, time });
  const old = new Date(now - 3 * DAY);
  writeFileSync(join(dir, 'history.jsonl'), [
    line(1, 'Sam', 'three days ago', old.getTime()),
    line(2, 'Sam', 'a minute later', old.getTime() + 60000),
    line(3, 'Kim', 'yesterday', now - DAY),
  ].join('\n') + '\n');
  const server = await startServer(['--data-dir', dir]);
  try {
    await post(server, 'today', 'Sam');
    const page = await open(server);
    await page.locator('.msg[data-id]', { hasText: 'today' }).waitFor();
    const rows = await page.locator('#messages > li').evaluateAll((els) => els.map((e) =>
      e.matches('.day') ? `[${e.textContent}]` : e.querySelector('.text').textContent));
    const oldLabel = old.toLocaleDateString('en-US', { weekday: 'short', day: 'numeric', month: 'short' });
    assert.deepEqual(rows, [`[${oldLabel}]`, 'three days ago', 'a minute later', '[Yesterday]', 'yesterday', '[Today]', 'today']);
    // The second of Sam's two messages shares the first one's name.
    const second = page.locator('.msg[data-id="7-2"]');
    assert.match(await second.getAttribute('class'), /\bcont\b/);
    // Out of sight, not out of the accessibility tree: a screen reader names the sender.
    assert.ok((await second.locator('.who').boundingBox()).width <= 1);
    assert.equal(await page.locator('.msg[data-id="7-1"] .who').isVisible(), true);
    const tree = await page.locator('.msg[data-id="7-2"]').ariaSnapshot();
    assert.match(tree, /Sam/, tree);
    // A tap on the time shows the whole date.
    const time = page.locator('.msg[data-id="7-1"] time');
    await time.tap();
    assert.match(await time.textContent(), new RegExp(String(old.getFullYear())));
    await page.context().close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('links open safely in a new tab, only http and https, and names have colours of their own', async () => {
  const server = await startServer();
  try {
    const page = await open(server, desktop);
    assert.equal(await page.locator('#empty').isVisible(), true, 'an empty chat says what to do');
    assert.match(await page.locator('#empty').textContent(), /send the first message/);
    await post(server, 'see https://example.com/menu.pdf, or javascript:alert(1) or <a href="http://x">x</a>', 'Ada');
    await post(server, 'שלום, מה שלום כולם?', 'Bo');
    const first = page.locator('.msg[data-id]', { hasText: 'menu.pdf' });
    await first.waitFor();
    assert.equal(await page.locator('#empty').isVisible(), false);
    const links = await first.locator('a').evaluateAll((as) => as.map((a) => [a.href, a.textContent, a.target, a.rel]));
    assert.deepEqual(links, [
      ['https://example.com/menu.pdf', 'https://example.com/menu.pdf', '_blank', 'noopener noreferrer'],
      ['http://x/', 'http://x', '_blank', 'noopener noreferrer'],
    ]);
    assert.match(await first.locator('.text').textContent(), /<a href="http:\/\/x">x<\/a>/, 'markup stays text');
    const hebrew = page.locator('.msg[data-id]', { hasText: 'שלום' });
    await hebrew.waitFor();
    assert.equal(await hebrew.locator('.text').getAttribute('dir'), 'auto');
    assert.equal(await hebrew.locator('.text').evaluate((e) => getComputedStyle(e).direction), 'rtl');
    const colour = (name) => page.locator('.msg[data-id]', { has: page.locator('.who', { hasText: name }) })
      .first().locator('.who').evaluate((e) => getComputedStyle(e).color);
    assert.notEqual(await colour('Ada'), await colour('Bo'));
    await post(server, 'again', 'Ada');
    await page.locator('.msg[data-id]', { hasText: 'again' }).waitFor();
    const adas = await page.locator('.who', { hasText: 'Ada' }).evaluateAll((es) => es.map((e) => getComputedStyle(e).color));
    assert.equal(new Set(adas).size, 1, 'one name, one colour');
    await page.context().close();
  } finally {
    await server.stop();
  }
});

test('a long name ends in an ellipsis and leaves the time on its line', async () => {
  const server = await startServer();
  try {
    const page = await open(server, { ...phone, viewport: { width: 320, height: 640 } });
    await post(server, 'hi', 'Wolfeschlegelsteinhausenbergerdorff-Li');
    const meta = page.locator('.msg[data-id] .meta').first();
    await meta.waitFor();
    const box = await meta.evaluate((m) => {
      const who = m.querySelector('.who');
      const time = m.querySelector('time');
      return {
        clipped: who.scrollWidth > who.clientWidth,
        ellipsis: getComputedStyle(who).textOverflow,
        oneLine: Math.abs(who.getBoundingClientRect().top - time.getBoundingClientRect().top) < 4,
        timeShown: time.getBoundingClientRect().right <= m.getBoundingClientRect().right + 1,
      };
    });
    assert.deepEqual(box, { clipped: true, ellipsis: 'ellipsis', oneLine: true, timeShown: true });
    await page.context().close();
  } finally {
    await server.stop();
  }
});

test('scrolled to the top, older messages load from history, in order, down to the oldest kept', async () => {
  const server = await startServer(['--backlog', '10', '--history', '100']);
  try {
    const all = [];
    for (let i = 0; i < 60; i++) all.push((await post(server, `old ${i}`)).id);
    const page = await open(server);
    await page.locator('.msg[data-id]', { hasText: 'old 59' }).waitFor();
    assert.equal((await ids(page)).length, 10);
    const shown = await until(async () => {
      await page.locator('#scroller').evaluate((s) => { s.scrollTop = 0; s.dispatchEvent(new Event('scroll')); });
      return (await ids(page)).length;
    }, 60);
    assert.equal(shown, 60);
    assert.deepEqual(await ids(page), all);
    assert.equal((await texts(page))[0], 'old 0');
    await page.context().close();
  } finally {
    await server.stop();
  }
});
