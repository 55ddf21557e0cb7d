// The list of messages on screen: placing each in order, days and groups, own
// messages, two people of one name told apart, older ones as the list is scrolled
// up (or until a message asked for is there), the changes made to messages after
// they were sent, and what a server restart leaves. Only what arrives live is announced to a
// screen reader; history is put in quietly.
import { $, emit, on, parse, relay, store } from './env.js';
import { bubble, dayLabel, dayOf } from './render.js';

export const scroller = $('scroller');
export const list = $('messages');
const hint = $('new-hint');
const announcer = $('announce');

const OWN_KEY = 'lanchat.own';
/** Messages kept on screen; older ones are removed as new ones come. */
const MAX_SHOWN = 1000;
/** Ids of this browser's own messages that are remembered (to draw them as own). */
const OWN_KEPT = 500;
/** How close to the end of the list (px) counts as reading the newest. */
const NEAR_END_PX = 48;
/** Messages from one person this close together share one name. */
const GROUP_MS = 5 * 60 * 1000;
/** How close to the top (px) loads the page of messages before the first shown. */
const OLDER_AT_PX = 200;

/** id -> { m, li } for every message on screen, in arrival order. */
export const shown = new Map();
/** id -> the pending bubble of a message this tab sent, until its event arrives. */
export const pendingById = new Map();
/** cid -> the pending bubble of a message of this page's outbox. */
export const pendingByCid = new Map();
/** The id of the last event in the sequence this page has. */
export const last = { id: '' };
/** name -> the device tags seen with it: more than one, and each bubble says which. */
const tagsOf = new Map();

// ---- own messages: ids this browser posted, shared by its tabs --------------------
const readOwn = () => { try { return new Set(JSON.parse(store.get(OWN_KEY) || '[]')); } catch { return new Set(); } };
export let own = readOwn();
export function rememberOwn(id) {
  own.add(id);
  const kept = [...own].slice(-OWN_KEPT);
  own = new Set(kept);
  store.set(OWN_KEY, JSON.stringify(kept));
  // To every other tab: this id is ours, draw it as own.
  relay({ type: 'own', id });
}
export function markOwn(id) {
  own.add(id);
  shown.get(id)?.li.classList.add('own');
}
addEventListener('storage', (e) => { if (e.key === OWN_KEY) own = readOwn(); });

export const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_END_PX;
export function scrollToEnd() {
  scroller.scrollTop = scroller.scrollHeight;
  hint.hidden = true;
}

/** The confirmed message before or after `li` in the list, skipping anything else. */
function neighbour(li, forward) {
  let el = forward ? li.nextElementSibling : li.previousElementSibling;
  while (el && !(el.matches('.msg[data-id]'))) {
    if (el.matches('.day.restart')) return null;
    el = forward ? el.nextElementSibling : el.previousElementSibling;
  }
  return el;
}

/** Whether two messages are from one sender: one device, or (without tags) one name. */
const sameSender = (a, b) => (a.device || b.device ? a.device === b.device : a.name === b.name)
  && a.name === b.name && Boolean(a.mod) === Boolean(b.mod);

/**
 * Fits a message just placed into its surroundings: a separator when the day
 * changes, its name hidden when it follows one of the same person's shortly before;
 * and the same for the message after it.
 */
function fitIn(li) {
  for (const el of [li, neighbour(li, true)]) {
    if (!el) continue;
    const m = shown.get(el.dataset.id)?.m;
    if (!m) continue;
    const before = neighbour(el, false);
    const prev = before && shown.get(before.dataset.id)?.m;
    let sep = el.previousElementSibling;
    if (!(sep && sep.matches('.day:not(.restart)'))) sep = null;
    const newDay = !prev || dayOf(prev.time) !== dayOf(m.time);
    if (newDay && !sep) {
      sep = document.createElement('li');
      sep.className = 'day';
      list.insertBefore(sep, el);
    } else if (!newDay && sep) {
      sep.remove();
      sep = null;
    }
    if (sep) sep.textContent = dayLabel(m.time);
    // Where the reader stopped starts a new group.
    el.classList.toggle('cont', Boolean(prev && !newDay && sameSender(prev, m) && m.time - prev.time < GROUP_MS
      && !el.previousElementSibling?.matches('.unread')
      && el.classList.contains('own') === before.classList.contains('own')));
  }
}

/** A message that leaves the list takes its separator with it when that leads nothing. */
function unfit(li) {
  const next = neighbour(li, true);
  const sep = li.previousElementSibling;
  li.remove();
  if (sep && sep.matches('.day:not(.restart)')) {
    const after = sep.nextElementSibling;
    if (!after || !after.matches('.msg[data-id]')) sep.remove();
  }
  if (next) fitIn(next);
}

/** When a name is used by more than one device, every bubble of it shows which. */
function tell(m) {
  if (!m.device) return;
  const tags = tagsOf.get(m.name) || new Set();
  tagsOf.set(m.name, tags.add(m.device));
  if (tags.size < 2) return;
  for (const { m: other, li } of shown.values()) {
    if (other.name === m.name && other.device) {
      const mark = li.querySelector('.tag');
      mark.textContent = `#${other.device.slice(0, 4)}`;
      mark.title = `device ${other.device}`;
    }
  }
}

export function removeMessage(id) {
  const entry = shown.get(id);
  if (!entry) return;
  shown.delete(id);
  unfit(entry.li);
  showEmpty();
}
on('deleted', removeMessage);

/** A bubble for a message from the server, with what it needs on this page. */
function confirmed(m, isOwn) {
  const li = bubble(m, isOwn ? 'own' : '');
  li.dataset.id = m.id;
  shown.set(m.id, { m, li });
  tell(m);
  return li;
}

/** Adds a bubble above the unconfirmed ones, following the newest unless the reader scrolled up or is away. */
function place(li, isOwn, live) {
  const follow = nearBottom() && !document.hidden;
  list.insertBefore(li, list.querySelector('.msg.pending, .msg.failed'));
  if (follow || isOwn || !live) scrollToEnd();
  else hint.hidden = false;
}

/** A message from the stream (`live`), or one of a page of history put in before it. */
export function showMessage(m, live = true) {
  if (!m || typeof m.id !== 'string') return;
  last.id = m.id;
  if (shown.has(m.id)) return; // a replay after a reconnect: already here
  // This page's own message: by its id once the answer came, or by its cid when the
  // event came first (or the answer was lost).
  const pending = pendingById.get(m.id) || (m.cid && pendingByCid.get(m.cid));
  if (pending) {
    pending.remove();
    pendingById.delete(m.id);
    if (m.cid) pendingByCid.delete(m.cid);
  }
  const isOwn = own.has(m.id) || Boolean(pending);
  const li = confirmed(m, isOwn);
  // Still on the server after a reset: no longer only on this device.
  list.querySelector(`.msg.stale[data-stale-id="${CSS.escape(m.id)}"]`)?.remove();
  place(li, isOwn, live);
  fitIn(li);
  showEmpty();
  if (live && !isOwn) announce(`${m.name}: ${m.text}`);
  emit('shown', m, li, live && !isOwn);
  if (shown.size > MAX_SHOWN) {
    const oldest = list.querySelector('.msg[data-id]');
    shown.delete(oldest.dataset.id);
    unfit(oldest);
  }
}

/** Says a new message to a screen reader, in a region of its own (the list is not live). */
function announce(text) {
  const line = document.createElement('p');
  line.textContent = text;
  announcer.append(line);
  while (announcer.childElementCount > 3) announcer.firstElementChild.remove();
}

/** What the server holds: "No messages yet" only once it has said there are none. */
export function showEmpty() {
  $('loading').hidden = true;
  $('empty').hidden = list.querySelector('.msg') !== null;
}

// ---- older messages, as the list is scrolled up ------------------------------------
let olderMore = true;
export const older = { loading: false };
/** The first page of history, fetched with the page (it is preloaded). */
export async function loadHistory() {
  try {
    // The same request as the page's preload, which it then answers; not waited for
    // long, or a stalled network would hold back the whole page.
    const res = await fetch('/messages', { signal: AbortSignal.timeout(8000) });
    if (!res.ok) return;
    const page = await res.json();
    olderMore = Boolean(page.more);
    for (const m of page.messages) showMessage(m, false);
    showEmpty();
  } catch { /* the stream's replay brings it */ }
}

/** Puts in the page of `limit` messages before the first shown; false when there are no more. */
export async function loadOlderPage(limit) {
  const first = list.querySelector('.msg[data-id]');
  if (!olderMore || !first) return false;
  const res = await fetch(`/messages?before=${encodeURIComponent(first.dataset.id)}&limit=${limit}`);
  if (!res.ok) return false;
  const page = await res.json();
  olderMore = Boolean(page.more);
  // Where the reader is stays where it is, however much goes in above.
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  for (const m of page.messages.reverse()) {
    if (shown.has(m.id) || !list.contains(first)) continue;
    const li = confirmed(m, own.has(m.id));
    const top = list.querySelector('.msg[data-id]');
    list.insertBefore(li, top.previousElementSibling?.matches('.day') ? top.previousElementSibling : top);
    fitIn(li);
    emit('shown', m, li, false);
  }
  scroller.scrollTop = scroller.scrollHeight - fromBottom;
  return page.messages.length > 0;
}

async function loadOlder() {
  if (older.loading || scroller.scrollTop > OLDER_AT_PX) return;
  older.loading = true;
  try { await loadOlderPage(50); } catch { /* again at the next scroll */ } finally {
    older.loading = false;
  }
}

// A photo tapped opens in the page's viewer (viewer.js), fetched the first time.
list.addEventListener('click', (e) => {
  const a = e.target.closest('a.photo');
  // A middle click, or one with a modifier, still opens the file as a link does.
  if (!a || e.button || e.ctrlKey || e.metaKey || e.shiftKey) return;
  e.preventDefault();
  // Unreachable (the network went), the photo opens as the link it is.
  import('./viewer.js').then((v) => v.open(a), () => window.open(a.href, '_blank', 'noopener'));
});

scroller.addEventListener('scroll', () => {
  if (nearBottom()) hint.hidden = true;
  loadOlder();
}, { passive: true });

/**
 * The server does not know the last id this page saw: it restarted without its
 * history, or this page was away longer than the history kept. Everything it still
 * has follows. What this page showed stays, under a note, until the server sends it
 * again: what it never does was lost with the server's memory and is now only here.
 */
export function reset() {
  list.querySelector('.day.restart')?.remove();
  for (const [id, { li }] of shown) {
    li.classList.add('stale');
    li.dataset.staleId = id;
    delete li.dataset.id;
    li.querySelector('.mod-toggle')?.remove();
  }
  shown.clear();
  const stale = list.querySelectorAll('.msg.stale');
  if (stale.length) {
    const mark = document.createElement('li');
    mark.className = 'day restart';
    mark.textContent = 'The server restarted: the messages above are only on this device.';
    stale[stale.length - 1].after(mark);
  }
  olderMore = true;
}

/**
 * A change to a message in the sequence: a deletion (the sender's leaves "message
 * deleted" in its place, the host's removes it), a reaction or an edit. Applied by
 * changes.js, loaded with the first; they are applied in the order they came.
 */
export function change(kind, data, id) {
  if (id) last.id = id;
  const d = parse(data);
  if (!d) return;
  if (kind === 'delete' && !d.own) removeMessage(d.id);
  import('./changes.js').then((c) => c.apply(kind, d));
}
