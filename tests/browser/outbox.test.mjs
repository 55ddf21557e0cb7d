// Nothing typed is lost: messages wait in the page's outbox (localStorage) while the
// server cannot be reached, also across a reload or a closed tab, and go out by
// themselves, in order and once each, when it answers again. A stalled connection
// shows within seconds. Served on a LAN-like name (not a secure context).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, phone, post, startServer, texts, until } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
});

const origin = (server) => `http://chat.lan:${server.addr.split(':').pop()}/`;

async function open(context, server, url = origin(server)) {
  const page = await context.newPage();
  await page.goto(url);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}

async function type(page, text) {
  await page.fill('#message', text);
  await page.click('#composer [type=submit]');
}

test('typed while the server is down, kept across a closed tab, sent in order once it is back', async () => {
  let server = await startServer();
  const addr = server.addr;
  try {
    const context = await browser.newContext(phone);
    const page = await open(context, server);
    await page.fill('#name', 'Eve');
    await server.kill();
    await type(page, 'first, while down');
    await type(page, 'second, while down');
    const pending = page.locator('.msg.pending');
    await pending.first().locator('.state', { hasText: /waiting for the/ }).waitFor();
    assert.equal(await pending.count(), 2);
    // The tab is closed before the server comes back.
    await page.close();

    server = await startServer([], addr);
    const reopened = await open(context, server);
    const want = ['first, while down', 'second, while down'];
    assert.deepEqual(await until(() => texts(reopened), want), want);
    assert.equal(await reopened.locator('.msg.pending, .msg.failed').count(), 0);
    assert.equal(await reopened.locator('.msg.own[data-id]').count(), 2, 'drawn as own');
    // Another phone sees each once, in order.
    const other = await open(await browser.newContext(phone), server);
    assert.deepEqual(await until(() => texts(other), want), want);
    await context.close();
    await other.context().close();
  } finally {
    await server.stop();
  }
});

test('an answer lost after the server stored the post: sent again, one message everywhere', async () => {
  const server = await startServer();
  try {
    const context = await browser.newContext(phone);
    // On 127.0.0.1: the test's own request to the server (route.fetch) is made
    // outside Chromium, which alone knows chat.lan.
    const page = await open(context, server, server.url);
    const other = await open(await browser.newContext(phone), server);
    let cut = 0;
    await page.route('**/message', async (route) => {
      if (cut++ === 0) {
        // The server gets and stores it; the answer never reaches the page.
        await route.fetch();
        await route.abort('connectionreset');
      } else {
        await route.continue();
      }
    });
    await type(page, 'exactly once');
    await until(() => cut >= 2, true);
    await page.locator('.msg[data-id]', { hasText: 'exactly once' }).waitFor();
    await other.locator('.msg[data-id]', { hasText: 'exactly once' }).waitFor();
    // Long enough for a second copy to have arrived, had there been one.
    await post(server, 'a later message');
    await other.locator('.msg[data-id]', { hasText: 'a later message' }).waitFor();
    for (const p of [page, other]) {
      assert.equal((await texts(p)).filter((t) => t === 'exactly once').length, 1);
    }
    assert.equal(await page.locator('.msg.pending, .msg.failed').count(), 0);
    assert.ok(cut >= 2, 'it was sent again');
    await context.close();
    await other.context().close();
  } finally {
    await server.stop();
  }
});

test('a stalled connection shows within 10 s, a message sent into it says sending…, and goes once it thaws', async () => {
  const server = await startServer();
  try {
    const context = await browser.newContext(phone);
    const page = await open(context, server);
    server.freeze();
    const frozeAt = Date.now();
    await page.locator('#status:not([data-state="connected"])').waitFor({ timeout: 10000 });
    const shownAfter = Date.now() - frozeAt;
    assert.ok(shownAfter <= 10000, `shown after ${shownAfter} ms`);
    await type(page, 'into the stall');
    await page.locator('.msg.pending .state', { hasText: /sending…|waiting for the/ })
      .waitFor({ timeout: 2500 });
    server.thaw();
    await page.locator('.msg[data-id]', { hasText: 'into the stall' }).waitFor({ timeout: 20000 });
    await page.locator('#status[data-state="connected"]').waitFor();
    assert.equal((await texts(page)).filter((t) => t === 'into the stall').length, 1);
    console.log(`stall shown after ${shownAfter} ms`);
    await context.close();
  } finally {
    server.thaw();
    await server.stop();
  }
});
