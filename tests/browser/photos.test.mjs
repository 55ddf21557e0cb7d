// Photos and files from the phone: a large photo with a GPS position and a sideways
// orientation arrives on another phone upright and at most 1,600 pixels, and the
// bytes served carry no EXIF at all; a PDF arrives as a link; a file over the limit
// says so. On a LAN-like name (not a secure context).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, phone, startServer } from './harness.mjs';
import { camera, photo } from './photo-fixture.mjs';

let browser;
let server;
let origin;
before(async () => {
  server = await startServer(['--max-upload', '512KiB']);
  origin = `http://chat.lan:${server.addr.split(':').pop()}/`;
  browser = await launch(['--host-resolver-rules=MAP chat.lan 127.0.0.1']);
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function open() {
  const page = await (await browser.newContext(phone)).newPage();
  await page.goto(origin);
  await page.locator('#status[data-state="connected"]').waitFor();
  return page;
}

const send = (page) => page.locator('#composer [type=submit]').tap();

test('a sideways photo with a GPS tag arrives upright, at most 1,600 px, with no metadata', async () => {
  const sender = await open();
  const receiver = await open();
  const original = await photo(sender);
  assert.ok(original.includes(Buffer.from('Exif\0\0', 'latin1')), 'the fixture has EXIF');
  assert.ok(original.length > 40_000, `${original.length}`);
  await sender.setInputFiles('#attach', { name: 'IMG_0001.JPG', mimeType: 'image/jpeg', buffer: original });
  await sender.locator('#attached .chip', { hasText: 'IMG_0001.jpg' }).waitFor();
  await sender.fill('#message', 'the view');
  await send(sender);

  const img = receiver.locator('.msg[data-id]', { hasText: 'the view' }).locator('.files img');
  await img.waitFor();
  const seen = await img.evaluate(async (el) => {
    await el.decode();
    const c = document.createElement('canvas');
    c.width = el.naturalWidth;
    c.height = el.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(el, 0, 0);
    const at = (x, y) => [...g.getImageData(x, y, 1, 1).data.slice(0, 3)];
    const bytes = new Uint8Array(await (await fetch(el.src)).arrayBuffer());
    const text = String.fromCharCode(...bytes.slice(0, 4096));
    return {
      width: el.naturalWidth,
      height: el.naturalHeight,
      reserved: [el.getAttribute('width'), el.getAttribute('height')],
      top: at(c.width / 2, 10),
      bottom: at(c.width / 2, c.height - 10),
      exif: text.includes('Exif'),
      size: bytes.length,
    };
  });
  // Turned a quarter to the right: the left (red) half is now on top.
  assert.deepEqual([seen.width, seen.height], [1067, 1600]);
  assert.deepEqual(seen.reserved, ['1067', '1600'], 'its room is kept before it loads');
  assert.ok(seen.top[0] > 200 && seen.top[2] < 60, `top is red: ${seen.top}`);
  assert.ok(seen.bottom[2] > 200 && seen.bottom[0] < 60, `bottom is blue: ${seen.bottom}`);
  assert.equal(seen.exif, false, 'no EXIF, so no GPS position, left the phone');
  assert.ok(seen.size < original.length, `${seen.size} < ${original.length}`);
  // Tapping it opens it whole.
  assert.equal(await receiver.locator('.files a').first().getAttribute('target'), '_blank');
  await sender.context().close();
  await receiver.context().close();
});

test('a 12 MP photo of about 4 MB travels as about 300 KB', async () => {
  const page = await open();
  const original = await camera(page);
  assert.ok(original.length > 3.5 * 1048576, `${original.length}`);
  await page.setInputFiles('#attach', { name: 'IMG_1234.JPG', mimeType: 'image/jpeg', buffer: original });
  await page.locator('#attached .chip').waitFor();
  await page.fill('#message', 'from the camera');
  await send(page);
  const img = page.locator('.msg[data-id]', { hasText: 'from the camera' }).locator('.files img');
  await img.waitFor();
  const sent = await img.evaluate(async (el) => (await (await fetch(el.src)).arrayBuffer()).byteLength);
  console.log(`a ${(original.length / 1048576).toFixed(1)} MB photo travelled as ${Math.round(sent / 1024)} KB`);
  assert.ok(sent < 512 * 1024, `${sent} bytes`);
  await page.context().close();
});

test('a PDF arrives as a link with its name, type and size; a file over the limit says so', async () => {
  const sender = await open();
  const receiver = await open();
  const pdf = Buffer.from('%PDF-1.4\n' + 'menu '.repeat(400));
  await sender.setInputFiles('#attach', { name: 'menu.pdf', mimeType: 'application/pdf', buffer: pdf });
  await sender.locator('#attached .chip', { hasText: 'menu.pdf' }).waitFor();
  await send(sender);
  const link = receiver.locator('.msg[data-id] .files a', { hasText: 'menu.pdf' });
  await link.waitFor();
  assert.equal(await link.textContent(), 'menu.pdf (application/pdf, 2 KB)');
  assert.equal(await link.getAttribute('download'), 'menu.pdf');

  // Over the server's limit: said at the chip, from the limit the server gave the
  // page, and nothing is uploaded.
  const posts = [];
  sender.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
  const big = Buffer.alloc(600 * 1024, 7);
  await sender.setInputFiles('#attach', { name: 'big.bin', mimeType: 'application/octet-stream', buffer: big });
  await sender.locator('#attached .chip', { hasText: 'big.bin: too large (the most is 512 KB)' }).waitFor();
  assert.deepEqual(posts, []);
  await sender.context().close();
  await receiver.context().close();
});

test('a photo sent while the server is down waits, also across a closed tab, and goes once it is back', async () => {
  let down = await startServer();
  const addr = down.addr;
  const url = `http://chat.lan:${addr.split(':').pop()}/`;
  try {
    const context = await browser.newContext(phone);
    const page = await context.newPage();
    await page.goto(url);
    await page.locator('#status[data-state="connected"]').waitFor();
    const original = await photo(page);
    await down.kill();
    await page.setInputFiles('#attach', { name: 'late.jpg', mimeType: 'image/jpeg', buffer: original });
    await page.locator('#attached .chip', { hasText: 'late.jpg' }).waitFor();
    await page.fill('#message', 'sent later');
    await send(page);
    await page.locator('.msg.pending', { hasText: 'sent later' })
      .locator('.state', { hasText: /waiting for the/ }).waitFor();
    await page.close();

    down = await startServer([], addr);
    const again = await context.newPage();
    await again.goto(url);
    const img = again.locator('.msg[data-id]', { hasText: 'sent later' }).locator('.files img');
    await img.waitFor();
    assert.equal(await again.locator('.msg[data-id] .files img').count(), 1, 'once');
    assert.equal(await again.locator('.msg.pending').count(), 0);
    await context.close();
  } finally {
    await down.stop();
  }
});
