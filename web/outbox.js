// Sending: the outbox. Every message typed goes into an outbox kept in localStorage
// (in memory where there is none, as in some sign-in sheets) and leaves it only when
// the server has it, or refused it for good. The outbox is sent in order, one at a
// time, by itself: when the server answers again, after a reload, or when the tab is
// opened again later. Each message carries an id made here (cid): sent twice (an
// answer lost on the way), the server answers with the message it already has and
// nobody sees it twice.
import { canStore, device, emit, learnTag, loadFiles, newId, on, refusal, store } from './env.js';
import { bubble } from './render.js';
import { list, markOwn, pendingByCid, pendingById, rememberOwn, scrollToEnd, shown } from './timeline.js';

/** Forgets the files kept for an outbox item, if it had any. */
const forgetFiles = (item) => { if (item.names?.length) loadFiles().then((f) => f.forgetFiles(item.cid)); };
/** The files kept for an outbox item, or none. */
const filesOf = async (item) => {
  const f = await loadFiles();
  return f.attachments.get(item.cid) || await f.uploads.get(item.cid);
};

const OUTBOX_KEY = 'lanchat.outbox';
/** A message not answered within this shows "sending…", and the server is checked. */
const SLOW_SEND_MS = 1000;
/** A send that gets no answer at all is given up (and tried again) after this. */
const SEND_TIMEOUT_MS = 20000;
/** Waits before sending again when the server could not be reached. */
const RESEND_MS = [1000, 2000, 4000, 8000, 15000];
/** Refusals that may succeed later: the server is there but cannot take it now. */
const TRY_AGAIN = ['too_slow', 'unavailable', 'not_stored', 'no_room_for_files', 'internal'];
/** Refusals that sending the same again cannot change: no Retry, the choices instead. */
const FINAL = ['file_too_large', 'too_large', 'too_many_files', 'muted', 'message_too_long', 'name_too_long'];
/** A message queued longer than this asks before it goes: it may no longer be meant. */
const STALE_MS = 10 * 60 * 1000;

let memoryOutbox = [];
export function readOutbox() {
  if (!canStore) return memoryOutbox;
  try { const items = JSON.parse(store.get(OUTBOX_KEY) || '[]'); return Array.isArray(items) ? items : []; } catch { return []; }
}
function writeOutbox(items) {
  if (canStore) store.set(OUTBOX_KEY, JSON.stringify(items));
  else memoryOutbox = items;
}
// Read, change, write each time: other tabs of this browser share the outbox.
const addToOutbox = (item) => writeOutbox([...readOutbox(), item]);
const dropFromOutbox = (cid) => writeOutbox(readOutbox().filter((i) => i.cid !== cid));

/** The bubble of an outbox item, made if this page has none yet: when it was written, and a Cancel. */
export function pendingBubble(item) {
  let li = pendingByCid.get(item.cid);
  if (!li) {
    li = bubble({ name: item.name || 'anonymous', text: item.text, time: item.at || Date.now(), reply: item.reply }, 'own pending');
    li.dataset.cid = item.cid;
    if (item.names?.length) {
      const files = document.createElement('div');
      files.className = 'files';
      files.textContent = item.names.join(', ');
      li.append(files);
    }
    li.append(button('Cancel', () => { discard(item, li); sendAbort?.abort(); }, 'cancel'));
    pendingByCid.set(item.cid, li);
    list.append(li);
    scrollToEnd();
  }
  return li;
}

function button(label, act, className = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = label;
  b.addEventListener('click', act);
  return b;
}

/** Gone from the outbox and the screen, files and all. */
function discard(item, li) {
  dropFromOutbox(item.cid);
  forgetFiles(item);
  pendingByCid.delete(item.cid);
  li.remove();
}

/** The small print under a pending message: what is happening to it. */
function setSendState(li, text) {
  li.className = 'msg own pending';
  let state = li.querySelector('.state');
  if (!state) {
    li.querySelector('.problem')?.remove();
    state = document.createElement('div');
    state.className = 'state';
    state.setAttribute('role', 'status');
    li.append(state);
  }
  state.textContent = text;
}

/** The server has it: the bubble becomes the message when its event comes. */
function confirmOwn(m, li) {
  rememberOwn(m.id);
  learnTag(m.device);
  pendingByCid.delete(m.cid);
  if (shown.has(m.id)) {
    // The event was faster than the answer.
    li.remove();
    markOwn(m.id);
  } else {
    li.querySelector('.state')?.remove();
    pendingById.set(m.id, li);
  }
}

let sending = false;
let resendTimer = 0;
let resendAttempt = 0;
/** The request under way, so that a failed check of the server can end it. */
let sendAbort = null;
on('lost', () => sendAbort?.abort());

/** Sends the outbox, oldest first, until it is empty or the server cannot be reached. */
export async function sendOutbox() {
  if (sending) return;
  sending = true;
  clearTimeout(resendTimer);
  try {
    for (;;) {
      const [item] = readOutbox();
      if (!item) break;
      const li = pendingBubble(item);
      if (!item.ok && Date.now() - item.at > STALE_MS) {
        // Written long ago and never sent: the writer says whether it still stands.
        stillSend(item, li);
        break;
      }
      const wait = await deliver(item, li);
      if (wait === 0) {
        resendAttempt = 0;
        continue;
      }
      resendTimer = setTimeout(sendOutbox, wait);
      break;
    }
  } finally {
    sending = false;
  }
}

/** One try at one message: 0 when it is done with (sent or refused), else how long to wait. */
async function deliver(item, li) {
  const slow = setTimeout(() => { setSendState(li, 'sending…'); emit('slow'); }, SLOW_SEND_MS);
  const abort = new AbortController();
  sendAbort = abort;
  const giveUp = setTimeout(() => abort.abort(), SEND_TIMEOUT_MS);
  try {
    // The phone's clock: a Pi with no network to set its own takes the time from
    // the phones (the server uses it only when most of them agree it is behind).
    // With when it was written: sent more than a minute later, everyone sees both.
    const fields = { name: item.name, message: item.text, cid: item.cid, device, written: String(item.at), sent: String(Date.now()) };
    if (item.reply) fields.reply = item.reply.id;
    let res;
    if (item.names?.length) {
      const files = await filesOf(item);
      if (!files) {
        dropFromOutbox(item.cid);
        pendingByCid.delete(item.cid);
        fail(li, item, 'the files were lost on this device; attach them again');
        return 0;
      }
      res = await (await loadFiles()).upload(fields, files, li, abort.signal);
    } else {
      res = await fetch('/message', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams(fields),
        signal: abort.signal,
      });
    }
    if (res.status === 201) {
      dropFromOutbox(item.cid);
      forgetFiles(item);
      confirmOwn(await res.json(), li);
      return 0;
    }
    const why = await refusal(res);
    if (why.code === 'rate_limited') {
      // Posting too fast: the server says how long to wait; send it then, by itself.
      const seconds = Math.max(1, Number(why.retry_after) || 1);
      setSendState(li, `Slow down: sending again in ${seconds} s`);
      return seconds * 1000;
    }
    const reason = why.message || `not sent (${res.status})`;
    if (TRY_AGAIN.includes(why.code) || (!why.code && res.status >= 500)) {
      setSendState(li, `${reason}; trying again…`);
      return backoff();
    }
    // Refused for good (too long, too large, muted, no key): it leaves the outbox;
    // the text, and the files until the writer decides, stay.
    dropFromOutbox(item.cid);
    pendingByCid.delete(item.cid);
    fail(li, item, reason, FINAL.includes(why.code));
    return 0;
  } catch {
    setSendState(li, navigator.onLine === false ? 'waiting for the network' : 'waiting for the server');
    return backoff();
  } finally {
    clearTimeout(slow);
    clearTimeout(giveUp);
    sendAbort = null;
  }
}

function backoff() {
  const wait = RESEND_MS[Math.min(resendAttempt, RESEND_MS.length - 1)];
  resendAttempt += 1;
  return wait;
}

/** Sends again at once: the server is back, or the person asked. */
function resendNow() {
  resendAttempt = 0;
  clearTimeout(resendTimer);
  sendOutbox();
}
on('connected', resendNow);

/** A refused message: why, and what can be done: Retry (with its files), or where
 * that cannot help, send it without its files, or let it go. */
function fail(li, item, reason, final) {
  li.className = 'msg own failed';
  li.querySelector('.state')?.remove();
  li.querySelector('.problem')?.remove();
  li.querySelector('.cancel')?.remove();
  const problem = document.createElement('div');
  problem.className = 'problem';
  const why = document.createElement('span');
  why.textContent = reason;
  const again = async (files) => { li.remove(); queue(item.text, item.name, files, item.at, item.reply); };
  const files = async () => (item.names?.length && await filesOf(item)) || [];
  problem.append(why);
  if (!final) problem.append(button('Retry', async () => { const kept = await files(); forgetFiles(item); again(kept); }));
  else if (item.names?.length) problem.append(button('Send without the file', () => { forgetFiles(item); again([]); }));
  problem.append(button('Discard', () => { forgetFiles(item); li.remove(); }));
  li.append(problem);
}

/** A message queued for more than ten minutes: send it after all, or not. */
function stillSend(item, li) {
  setSendState(li, 'Written a while ago: still send?');
  li.querySelector('.state').append(
    button('Send', () => { writeOutbox(readOutbox().map((i) => (i.cid === item.cid ? { ...i, ok: true } : i))); sendOutbox(); }),
    button('Discard', () => { discard(item, li); sendOutbox(); }),
  );
}

/** A new message from the box: into the outbox, on screen, on its way. */
export async function queue(text, name, files = [], at = Date.now(), reply = undefined) {
  const item = { cid: newId(), name, text, at, reply };
  if (files.length) {
    item.names = files.map((f) => f.name);
    const f = await loadFiles();
    f.attachments.set(item.cid, files);
    pendingBubble(item);
    // The files are kept before the message joins the outbox: an outbox entry
    // whose files a closed tab never finished writing could not be sent.
    await f.uploads.put(item.cid, files);
  }
  addToOutbox(item);
  pendingBubble(item);
  sendOutbox();
}
