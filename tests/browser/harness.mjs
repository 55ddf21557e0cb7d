// Starts the real lanchat binary and Debian's Chromium for the page tests.
// LANCHAT_BIN names the binary (tests/browser.rs passes cargo's); CHROMIUM the
// browser (default /usr/bin/chromium); LANCHAT_SCREENSHOTS the folder for pictures.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = process.env.LANCHAT_BIN;
if (!BIN) throw new Error('set LANCHAT_BIN to the lanchat binary (cargo test does)');

export const screenshots = process.env.LANCHAT_SCREENSHOTS || join(tmpdir(), 'lanchat-screenshots');
mkdirSync(screenshots, { recursive: true });

/** A running server; `listen` may name a fixed address to restart on. */
export async function startServer(args = [], listen = '127.0.0.1:0') {
  // Scripts here post far faster than a person: no post rate unless a test sets one.
  const child = spawn(BIN, ['--listen', listen, '--quiet', '--retry', '300ms', '--post-rate', 'off', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start-up line in 20 s:\n${log}`)), 20000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const found = /listening on (\S+) \(/.exec(log);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`lanchat exited with ${code}:\n${log}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {
    addr,
    url: `http://${addr}/`,
    log: () => log,
    /** SIGTERM, as systemd stops it. */
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    /** SIGSTOP / SIGCONT: the connection stays open and goes silent, as a dead
     * one looks to a phone that wakes from sleep. */
    freeze() { child.kill('SIGSTOP'); },
    thaw() { child.kill('SIGCONT'); },
    /** SIGKILL: a power cut, as far as the browser can tell. */
    async kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

/** Posts as a non-browser client would; resolves to the stored message. */
export async function post(server, message, name = 'script') {
  const res = await fetch(`${server.url}message`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams({ message, name }),
  });
  if (res.status !== 201) throw new Error(`post to ${server.url} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** Chromium; `extra` are more command-line switches. */
export async function launch(extra = []) {
  const profile = mkdtempSync(join(tmpdir(), 'lanchat-chromium-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      ...extra,
    ],
    env: { ...process.env, HOME: profile },
  });
  browser.on('disconnected', () => rmSync(profile, { recursive: true, force: true }));
  // A first message without a name asks for one (composer.js). Pages in tests have
  // already said "send as anonymous", unless a context is made with `askName: true`.
  const plain = browser.newContext.bind(browser);
  browser.newContext = async ({ askName, ...options } = {}) => {
    const context = await plain(options);
    if (!askName) await context.addInitScript(() => { try { localStorage.setItem('lanchat.anonymous', '1'); } catch { /* none */ } });
    return context;
  };
  return browser;
}

/** A phone: narrow viewport, touch, mobile user agent behaviour. */
export const phone = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
};

export const desktop = { viewport: { width: 1280, height: 800 } };

/** Texts of the confirmed bubbles on a page, oldest first. */
export const texts = (page) =>
  page.locator('#messages .msg[data-id] .text').allTextContents();

/** Ids of the confirmed bubbles on a page, oldest first. */
export const ids = (page) =>
  page.locator('#messages .msg[data-id]').evaluateAll((els) => els.map((e) => e.dataset.id));

/** As the browser does when the tab goes to the background or comes back. */
export async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (h ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  }, hidden);
}

/** Waits until `fn()` deep-equals `want` (or until `ms`), then returns its last value. */
export async function until(fn, want, ms = 10000) {
  const end = Date.now() + ms;
  let got;
  for (;;) {
    got = await fn();
    if (JSON.stringify(got) === JSON.stringify(want) || Date.now() > end) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
}
