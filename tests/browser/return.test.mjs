// Coming back to a chat that moved on, on a LAN-like name (not a secure context):
// where the reader was, who said what, every width from 320 px in every connection
// state, a first paint that never says "empty" while loading, a screen reader told
// only what is new, drafts and written times that survive the network, attachments
// that are retried with their files, and the photo viewer.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch, phone, post, screenshots, setHidden, startServer, until } from './harness.mjs';
import { photo } from './photo-fixture.mjs';

let browser;
let server;
let lan;
const port = (s) => s.addr.split(':').pop();
before(async () => {
  server = await startServer(['--backlog', '50', '--max-upload', '512KiB']);
  lan = `http://chat.lan:${port(server)}/`;
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

const small = { ...phone, viewport: { width: 360, height: 640 } };

async function open(options = small, url = lan) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}


const bubble = (page, text) => page.locator('.msg[data-id]', { hasText: text });
const send = (page) => page.locator('#composer [type=submit]').click();
const shot = (page, name) => page.screenshot({ path: join(screenshots, `return-${name}.png`) });

/** Where an element is against the scroller's view: 'above', 'in' or 'below'. */
const placeOf = (locator) => locator.evaluate((el) => {
  const view = document.getElementById('scroller').getBoundingClientRect();
  const box = el.getBoundingClientRect();
  if (box.bottom <= view.top) return 'above';
  return box.top >= view.bottom ? 'below' : 'in';
});

test('away while 15 came: a divider says how many and the view opens there, the pill counts those below; after a reload too', async () => {
  await post(server, 'read before going away', 'Bo');
  const page = await open();
  await bubble(page, 'read before going away').waitFor();
  await setHidden(page, true);
  const texts = Array.from({ length: 15 }, (_, i) => `while away ${i + 1}\nwith a second line`);
  for (const t of texts) await post(server, t, 'Bo');
  await bubble(page, 'while away 15').waitFor();
  assert.equal(await page.locator('.unread').count(), 0, 'no divider while hidden');
  await setHidden(page, false);

  const divider = page.locator('#messages .unread');
  assert.equal(await divider.textContent(), '15 new messages');
  assert.equal(await page.locator('#messages .unread + .msg .text').textContent(), texts[0].replace('\n', '\n'));
  assert.equal(await page.locator('#messages .unread + .msg .who').isVisible(), true, 'the first one back shows its name');
  assert.equal(await placeOf(divider), 'in', 'the view opens at the divider');
  assert.equal(await placeOf(bubble(page, 'while away 15')), 'below', 'the test needs the newest off screen');
  const pill = page.locator('#new-hint');
  assert.match(await pill.textContent(), /^([1-9]|1[0-4]) new messages? ↓$/);
  const below = Number((await pill.textContent()).split(' ')[0]);
  const counted = await page.locator('#messages .msg[data-id]').evaluateAll((els) => {
    const bottom = document.getElementById('scroller').getBoundingClientRect().bottom;
    return els.filter((el) => el.getBoundingClientRect().top >= bottom).length;
  });
  assert.equal(below, counted, 'the pill counts the unseen below the view');
  await shot(page, 'divider');
  await pill.click();
  await until(() => placeOf(bubble(page, 'while away 15')), 'in');
  assert.equal(await placeOf(bubble(page, 'while away 15')), 'in', 'the pill leads to the newest');
  assert.equal(await until(() => pill.isHidden(), true), true);

  // Closed, and opened again after more came: the same, from what this device saw.
  const context = page.context();
  await page.close();
  for (let i = 1; i <= 15; i++) await post(server, `while closed ${i}`, 'Bo');
  const again = await context.newPage();
  await again.goto(lan);
  await bubble(again, 'while closed 15').waitFor();
  const divider2 = again.locator('#messages .unread');
  assert.equal(await until(() => divider2.textContent(), '15 new messages'), '15 new messages');
  assert.equal(await again.locator('#messages .unread + .msg .text').textContent(), 'while closed 1');
  assert.equal(await placeOf(divider2), 'in');
  await context.close();
});

test('two phones named Ana are told apart and never grouped; a grouped message keeps its sender for a screen reader', async () => {
  const one = await open();
  const two = await open();
  const reader = await open();
  const say = async (page, text) => {
    await page.fill('#name', 'Ana');
    await page.fill('#message', text);
    await send(page);
    await bubble(reader, text).waitFor();
  };
  await say(one, 'Ana one: hello');
  await say(one, 'Ana one: again');
  await say(two, 'Ana two: I am Ana too');
  await say(one, 'Ana one: who is that?');
  const seen = await reader.locator('#messages .msg[data-id]').evaluateAll((els) => els
    .filter((el) => el.querySelector('.text').textContent.startsWith('Ana '))
    .map((el) => ({ text: el.querySelector('.text').textContent, tag: el.querySelector('.tag').textContent, grouped: el.classList.contains('cont') })));
  const tagOf = (prefix) => [...new Set(seen.filter((s) => s.text.startsWith(prefix)).map((s) => s.tag))];
  assert.equal(tagOf('Ana one').length, 1, `one device, one mark: ${JSON.stringify(seen)}`);
  assert.equal(tagOf('Ana two').length, 1);
  assert.match(tagOf('Ana one')[0], /^#[0-9a-z]{4}$/);
  assert.notEqual(tagOf('Ana one')[0], tagOf('Ana two')[0], 'each Ana has her own mark');
  assert.deepEqual(seen.map((s) => s.grouped), [false, true, false, false], 'grouped only under the same device');

  // Hidden from sight under the name above, the sender is still in the tree.
  const grouped = reader.locator('.msg.cont', { hasText: 'Ana one: again' });
  assert.match(await grouped.ariaSnapshot(), /Ana/);
  assert.match(await grouped.ariaSnapshot(), new RegExp(tagOf('Ana one')[0]));
  await shot(reader, 'two-anas');
  for (const p of [one, two, reader]) await p.context().close();
});

test('no sideways scroll from 320 to 414 px connected, reconnecting and offline; the name on screen; the count only while connected', async () => {
  let own = await startServer();
  const url = `http://chat.lan:${port(own)}/`;
  const pages = [];
  for (const width of [320, 340, 360, 390, 414]) {
    const page = await open({ ...phone, viewport: { width, height: 700 } }, url);
    await page.fill('#name', 'Maximilian-Alexander');
    pages.push(page);
  }
  const measure = async (state) => {
    const found = [];
    for (const page of pages) {
      await page.locator(`#status[data-state="${state}"]`).waitFor();
      const m = await page.evaluate(() => {
        const name = document.getElementById('name').getBoundingClientRect();
        return {
          width: innerWidth,
          scroll: document.documentElement.scrollWidth,
          name: [Math.round(name.left), Math.round(name.right)],
          online: !document.getElementById('online').hidden && document.getElementById('online').textContent,
        };
      });
      if (m.scroll !== m.width || m.name[0] < 0 || m.name[1] > m.width) found.push(`${state} at ${m.width}: ${JSON.stringify(m)}`);
      if (state === 'connected' ? !/^\d+ online$/.test(m.online) : m.online) found.push(`${state} at ${m.width}: online shows ${m.online}`);
    }
    return found;
  };
  const problems = [];
  for (const page of pages) await until(() => page.locator('#online').textContent(), '5 online');
  problems.push(...await measure('connected'));
  await own.stop();
  problems.push(...await measure('reconnecting'));
  await shot(pages[0], 'reconnecting-320');
  own = await startServer([], own.addr);
  problems.push(...await measure('connected'));
  for (const page of pages) await page.context().setOffline(true);
  problems.push(...await measure('offline'));
  await shot(pages[0], 'offline-320');
  assert.deepEqual(problems, []);
  for (const page of pages) await page.context().close();
  await own.stop();
});

test('on Slow 3G the newest messages follow the shell within one round trip, and "No messages yet" never shows', async () => {
  for (let i = 1; i <= 100; i++) await post(server, `history ${i}`, 'Cy');
  const context = await browser.newContext(phone);
  await context.addInitScript(() => {
    window.seen = { empty: false, loading: false, message: 0 };
    new MutationObserver(() => {
      const empty = document.getElementById('empty');
      const loading = document.getElementById('loading');
      if (empty && !empty.hidden) window.seen.empty = true;
      if (loading && !loading.hidden) window.seen.loading = true;
      if (!window.seen.message && document.querySelector('#messages .msg[data-id]')) window.seen.message = performance.now();
    }).observe(document, { subtree: true, childList: true, attributes: true });
  });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  // DevTools' "Slow 3G": 2 s round trips, 50 KB/s each way.
  const rtt = 2000;
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: rtt, downloadThroughput: 50000, uploadThroughput: 50000,
  });
  await page.goto(lan, { waitUntil: 'commit' });
  // Before any script has run, no raw control: the file input is styled away.
  await page.locator('#attach').waitFor({ state: 'attached' });
  await bubble(page, 'history 100').waitFor({ timeout: 30000 });
  const t = await page.evaluate(() => ({
    shell: performance.getEntriesByType('paint').find((p) => p.name === 'first-contentful-paint')?.startTime,
    html: performance.getEntriesByType('navigation')[0].responseEnd,
    ...window.seen,
  }));
  if (process.env.LANCHAT_FIGURES) console.log('slow 3g', JSON.stringify(t));
  assert.equal(t.empty, false, '"No messages yet" never showed');
  assert.equal(t.loading, true, 'a loading state showed instead');
  assert.ok(t.shell > 0, `the shell painted: ${JSON.stringify(t)}`);
  assert.ok(t.message - t.shell <= rtt, `the first messages within one round trip of the shell: ${JSON.stringify(t)}`);
  assert.ok(t.message - t.html <= 2 * rtt, `the history is fetched beside the script, not after it: ${JSON.stringify(t)}`);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await context.close();

  // Before the script runs, CSS alone hides the file input behind its paperclip.
  const bare = await browser.newContext(phone);
  const shell = await bare.newPage();
  await shell.route('**/*.js', (route) => route.abort());
  await shell.goto(lan);
  const input = await shell.locator('#attach').evaluate((el) => {
    const box = el.getBoundingClientRect();
    return { width: box.width, opacity: getComputedStyle(el).opacity };
  });
  assert.ok(input.width <= 1 || input.opacity === '0', `no bare "Choose Files": ${JSON.stringify(input)}`);
  await bare.close();
});

test('only live messages are announced: nothing on open, nothing as older ones load', async () => {
  for (let i = 1; i <= 60; i++) await post(server, `older ${i}`, 'Dee');
  const context = await browser.newContext(small);
  await context.addInitScript(() => {
    window.announced = [];
    addEventListener('DOMContentLoaded', () => {
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.addedNodes) window.announced.push(n.textContent);
      }).observe(document.getElementById('announce'), { childList: true, subtree: true });
    });
  });
  const page = await context.newPage();
  await page.goto(lan);
  await page.locator('#status[data-state="connected"]').waitFor();
  await bubble(page, 'older 60').waitFor();
  assert.equal(await page.locator('#messages').evaluate((el) => el.closest('[aria-live], [role="log"]')), null, 'the list itself is not live');
  assert.deepEqual(await page.evaluate(() => window.announced), [], 'nothing announced on open');
  const before = await page.locator('#messages .msg[data-id]').count();
  await page.locator('#scroller').evaluate((s) => { s.scrollTop = 0; });
  await until(async () => (await page.locator('#messages .msg[data-id]').count()) > before, true);
  assert.ok(await page.locator('#messages .msg[data-id]').count() > before, 'older messages loaded');
  assert.deepEqual(await page.evaluate(() => window.announced), [], 'nothing announced as older ones load');
  await post(server, 'said just now', 'Eve');
  assert.deepEqual(await until(() => page.evaluate(() => window.announced), ['Eve: said just now']), ['Eve: said just now']);
  await context.close();
});

test('the text being typed and the files chosen survive a reload', async () => {
  const page = await open();
  const reader = await open();
  await page.fill('#message', 'half a thought');
  const pdf = Buffer.from('%PDF-1.4\n' + 'notes '.repeat(200));
  await page.setInputFiles('#attach', { name: 'notes.pdf', mimeType: 'application/pdf', buffer: pdf });
  await page.locator('#attached .chip', { hasText: 'notes.pdf' }).waitFor();
  await page.reload();
  await page.locator('#status[data-state="connected"]').waitFor();
  assert.equal(await page.inputValue('#message'), 'half a thought');
  await page.locator('#attached .chip', { hasText: 'notes.pdf' }).waitFor();
  await send(page);
  await reader.locator('.msg[data-id]', { hasText: 'half a thought' }).locator('.files a', { hasText: 'notes.pdf' }).waitFor();
  await page.reload();
  await page.locator('#status[data-state="connected"]').waitFor();
  assert.equal(await page.inputValue('#message'), '', 'a sent draft is gone');
  assert.equal(await page.locator('#attached .chip').count(), 0);
  await page.context().close();
  await reader.context().close();
});

test('written during a 70 s outage, a message shows written · sent on the other phone; a queued one can be cancelled', async () => {
  const reader = await open();
  const context = await browser.newContext(small);
  const page = await context.newPage();
  // The phone's clock, moved on by the test instead of waited for.
  await page.clock.install();
  await page.goto(lan);
  await page.locator('#status[data-state="connected"]').waitFor();
  await context.setOffline(true);
  await page.fill('#message', 'typed in the outage');
  await send(page);
  const queued = page.locator('.msg.pending', { hasText: 'typed in the outage' });
  await queued.waitFor();
  assert.match(await queued.locator('time').textContent(), /^\d{1,2}:\d\d( [AP]M)?$/, 'shows when it was written');
  await page.fill('#message', 'thought better of it');
  await send(page);
  await page.locator('.msg.pending', { hasText: 'thought better of it' }).getByRole('button', { name: 'Cancel' }).click();
  assert.equal(await page.locator('.msg', { hasText: 'thought better of it' }).count(), 0);
  await page.clock.fastForward('01:10');
  await context.setOffline(false);
  const late = reader.locator('.msg[data-id]', { hasText: 'typed in the outage' });
  await late.waitFor();
  const stamp = await late.locator('time').textContent();
  const [, written, sent] = /^written (\d{1,2}:\d\d(?: [AP]M)?) · sent (\d{1,2}:\d\d(?: [AP]M)?)$/.exec(stamp) || [];
  assert.ok(written && sent && written !== sent, `both times: ${stamp}`);
  const who = await late.locator('.who').evaluate((el) => ({ text: el.textContent, cut: el.scrollWidth > el.clientWidth }));
  assert.deepEqual(who, { text: 'anonymous', cut: false }, 'the two times leave the name whole');
  await shot(reader, 'written-sent');
  await bubble(page, 'typed in the outage').locator('time', { hasText: /^written / }).waitFor();
  await page.fill('#message', 'after the cancelled one');
  await send(page);
  await reader.locator('.msg[data-id]', { hasText: 'after the cancelled one' }).waitFor();
  assert.equal(await reader.locator('.msg', { hasText: 'thought better of it' }).count(), 0, 'the cancelled one never went');

  // Queued for more than ten minutes: it asks before it goes.
  await context.setOffline(true);
  await page.fill('#message', 'from long ago');
  await send(page);
  await page.clock.fastForward('11:00');
  await context.setOffline(false);
  const ask = page.locator('.msg.pending', { hasText: 'from long ago' });
  await ask.getByText('still send?').waitFor();
  assert.equal(await reader.locator('.msg', { hasText: 'from long ago' }).count(), 0, 'not sent before the writer says so');
  await ask.getByRole('button', { name: 'Send' }).click();
  await reader.locator('.msg[data-id]', { hasText: 'from long ago' }).locator('time', { hasText: /^written / }).waitFor();
  await context.close();
  await reader.context().close();
});

test('Retry sends the files again; a refusal that cannot succeed offers to send without the file', async () => {
  const page = await open();
  const reader = await open();
  const pdf = (name) => ({ name, mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\n' + 'x '.repeat(300)) });
  // The first upload is refused as a form the server could not read.
  let refuse = { status: 400, code: 'bad_form', message: 'the form could not be read' };
  await page.route('**/message', async (route) => {
    if (!refuse) return route.continue();
    const { status, ...body } = refuse;
    refuse = null;
    return route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
  });
  await page.fill('#message', 'the menu, again');
  await page.setInputFiles('#attach', pdf('menu.pdf'));
  await page.locator('#attached .chip', { hasText: 'menu.pdf' }).waitFor();
  await send(page);
  const failed = page.locator('.msg.failed', { hasText: 'the menu, again' });
  await failed.getByText('the form could not be read').waitFor();
  await failed.getByRole('button', { name: 'Retry' }).click();
  await reader.locator('.msg[data-id]', { hasText: 'the menu, again' }).locator('.files a', { hasText: 'menu.pdf' }).waitFor();

  // Too large for the server (its limit changed since the page learnt it): Retry
  // cannot help, so it is not offered.
  refuse = { status: 413, code: 'file_too_large', message: 'a file is larger than 512 KiB' };
  await page.fill('#message', 'the big plan');
  await page.setInputFiles('#attach', pdf('plan.pdf'));
  await page.locator('#attached .chip', { hasText: 'plan.pdf' }).waitFor();
  await send(page);
  const big = page.locator('.msg.failed', { hasText: 'the big plan' });
  await big.getByText('a file is larger than 512 KiB').waitFor();
  assert.equal(await big.getByRole('button', { name: 'Retry' }).count(), 0);
  assert.equal(await big.getByRole('button', { name: 'Discard' }).count(), 1);
  await big.getByRole('button', { name: 'Send without the file' }).click();
  const textOnly = reader.locator('.msg[data-id]', { hasText: 'the big plan' });
  await textOnly.waitFor();
  assert.equal(await textOnly.locator('.files').count(), 0);
  await page.context().close();
  await reader.context().close();
});

test('a tapped photo opens in the page; arrows move, Escape closes and focus returns to the photo', async () => {
  const page = await open();
  const reader = await open();
  const jpeg = await photo(page);
  await page.setInputFiles('#attach', [
    { name: 'first.jpg', mimeType: 'image/jpeg', buffer: jpeg },
    { name: 'second.jpg', mimeType: 'image/jpeg', buffer: jpeg },
  ]);
  await page.locator('#attached .chip', { hasText: 'second.jpg' }).waitFor();
  await page.fill('#message', 'two photos');
  await send(page);
  const message = reader.locator('.msg[data-id]', { hasText: 'two photos' });
  await message.locator('img').nth(1).waitFor();
  assert.equal(await message.locator('.files.grid').count(), 1, 'several photos as a grid');
  const tallest = await message.locator('img').first().evaluate((img) => img.getBoundingClientRect().height / parseFloat(getComputedStyle(document.documentElement).fontSize));
  assert.ok(tallest <= 20.5, `at most about 20 rem tall: ${tallest}`);
  const first = message.locator('a.photo').first();
  await first.click();
  const viewer = reader.getByRole('dialog', { name: 'Photo' });
  await viewer.waitFor();
  assert.equal(reader.url(), lan, 'the page stays');
  const shown = () => viewer.locator('img').evaluate((img) => img.src);
  const hrefs = await message.locator('a.photo').evaluateAll((as) => as.map((a) => a.href));
  assert.equal(await shown(), hrefs[0]);
  await reader.keyboard.press('ArrowRight');
  assert.equal(await shown(), hrefs[1]);
  await shot(reader, 'viewer');
  await reader.keyboard.press('Escape');
  await viewer.waitFor({ state: 'hidden' });
  assert.equal(await first.evaluate((a) => a === document.activeElement), true, 'focus is back on the photo');
  await page.context().close();
  await reader.context().close();
});

test('a first message without a name asks for one; "send as anonymous" sends it', async () => {
  const context = await browser.newContext({ ...small, askName: true });
  const page = await context.newPage();
  await page.goto(lan);
  await page.locator('#status[data-state="connected"]').waitFor();
  await page.fill('#message', 'who am I?');
  await send(page);
  const ask = page.locator('#ask-name');
  await ask.waitFor();
  assert.equal(await page.locator('.msg', { hasText: 'who am I?' }).count(), 0, 'nothing sent before the answer');
  await shot(page, 'ask-name');
  await ask.getByRole('button', { name: 'Send as anonymous' }).click();
  await bubble(page, 'who am I?').waitFor();
  assert.equal(await bubble(page, 'who am I?').locator('.who').textContent(), 'anonymous');
  // Asked once: the next goes without the question.
  await page.fill('#message', 'me again');
  await send(page);
  await bubble(page, 'me again').waitFor();
  assert.equal(await ask.isHidden(), true);
  await context.close();
});

test('"x@Ana.com" is not a mention of Ana, "@Ana" is', async () => {
  const ana = await open();
  await ana.fill('#name', 'Ana');
  await post(server, 'write to x@Ana.com', 'Bo');
  await post(server, 'thanks @Ana!', 'Bo');
  await bubble(ana, 'thanks @Ana!').waitFor();
  assert.equal(await bubble(ana, 'write to x@Ana.com').evaluate((li) => li.classList.contains('mention')), false);
  assert.equal(await bubble(ana, 'thanks @Ana!').evaluate((li) => li.classList.contains('mention')), true);
  await ana.context().close();
});
