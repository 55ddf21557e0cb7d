// lanchat's page. Messages arrive on one EventSource per browser: the tab that holds
// the lead opens it and relays every event to the other tabs over a
// BroadcastChannel (browsers allow six HTTP/1.1 connections per host; a seventh tab
// would hang). Everything from the network is rendered with textContent, never as
// HTML. Without JavaScript the form still posts, the page reloads, and a frame
// shows the newest messages (/recent).
'use strict';

const $ = (id) => document.getElementById(id);
const scroller = $('scroller');
const list = $('messages');
const form = $('composer');
const input = $('message');
const nameInput = $('name');
const statusEl = $('status');
const onlineEl = $('online');
const hint = $('new-hint');

const NAME_KEY = 'lanchat.name';
const OWN_KEY = 'lanchat.own';
const LEASE_KEY = 'lanchat.leader';
/** Messages kept on screen; older ones are removed as new ones come. */
const MAX_SHOWN = 1000;
/** Ids of this browser's own messages that are remembered (to draw them as own). */
const OWN_KEPT = 500;
/** How close to the end of the list (px) counts as reading the newest. */
const NEAR_END_PX = 48;
/** After the browser gave up on the stream (a non-200 answer), try again this late. */
const REOPEN_AFTER_GIVE_UP_MS = 5000;
/** A localStorage lead lapses when not renewed for this long... */
const LEASE_MS = 6000;
/** ...and its holder renews it this often. */
const LEASE_RENEW_MS = 2000;
/** How often a visible page checks that its stream is alive. */
const ALIVE_CHECK_MS = 1000;
const OUTBOX_KEY = 'lanchat.outbox';
/** A message not answered within this shows "sending…", and the server is checked. */
const SLOW_SEND_MS = 1000;
/** A send that gets no answer at all is given up (and tried again) after this. */
const SEND_TIMEOUT_MS = 20000;
/** Waits before sending again when the server could not be reached. */
const RESEND_MS = [1000, 2000, 4000, 8000, 15000];
/** A visible page asks whether the server is there after its stream was quiet this long... */
const QUIET_MS = 3000;
/** ...and takes no answer within this for none. */
const PING_TIMEOUT_MS = 3000;
/** How long the moderator's mute lasts. */
const MUTE_MINUTES = 10;
/**
 * Set by the server, with the key in a cookie scripts cannot read, when this browser
 * opened the moderator link. It only shows the actions: each one checks the key.
 */
const isHost = document.cookie.split(/;\s*/).includes('lanchat_moderator=1');

const parse = (data) => { try { return JSON.parse(data); } catch { return null; } };

const store = {
  get(key) { try { return localStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
  remove(key) { try { localStorage.removeItem(key); } catch { /* private mode */ } },
};

/** id -> { m, li } for every message on screen, in arrival order. */
const shown = new Map();
/** id -> the pending bubble of a message this tab sent, until its event arrives. */
const pendingById = new Map();
let lastId = '';
let heartbeat = 15000;
let lastByte = Date.now();
let online = null;

// ---- own messages: ids this browser posted, shared by its tabs --------------------
const readOwn = () => { try { return new Set(JSON.parse(store.get(OWN_KEY) || '[]')); } catch { return new Set(); } };
let own = readOwn();
function rememberOwn(id) {
  own.add(id);
  const kept = [...own].slice(-OWN_KEPT);
  own = new Set(kept);
  store.set(OWN_KEY, JSON.stringify(kept));
}
function markOwn(id) {
  const entry = shown.get(id);
  if (entry) entry.li.classList.add('own');
}
addEventListener('storage', (e) => { if (e.key === OWN_KEY) own = readOwn(); });

// ---- nickname ---------------------------------------------------------------------
nameInput.value = store.get(NAME_KEY) || '';
nameInput.addEventListener('input', () => store.set(NAME_KEY, nameInput.value.trim()));

// ---- rendering --------------------------------------------------------------------
const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_END_PX;
function scrollToEnd() {
  scroller.scrollTop = scroller.scrollHeight;
  hint.hidden = true;
}
scroller.addEventListener('scroll', () => { if (nearBottom()) hint.hidden = true; });
hint.addEventListener('click', scrollToEnd);

function bubble(m, classes) {
  const li = document.createElement('li');
  li.className = `msg ${classes}`.trim();
  const meta = document.createElement('div');
  meta.className = 'meta';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = m.name;
  who.dir = 'auto';
  who.title = m.name;
  // Each name its own colour (a hue from a hash of the name; the theme sets the
  // lightness, so that every hue reads on its background).
  who.style.setProperty('--hue', String(hue(m.name)));
  meta.append(who);
  if (m.mod) {
    // Set by the server for the moderator's posts only: a name can be taken, this not.
    li.classList.add('by-host');
    const badge = document.createElement('span');
    badge.className = 'host';
    badge.textContent = 'host';
    meta.append(badge);
  }
  const when = document.createElement('time');
  const date = new Date(m.time);
  when.dateTime = date.toISOString();
  when.textContent = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  // The whole date: on hover, and on a tap (a phone has no hover).
  when.title = date.toLocaleString([], { dateStyle: 'full', timeStyle: 'short' });
  when.addEventListener('click', () => {
    const full = when.dataset.full !== '1';
    when.dataset.full = full ? '1' : '';
    when.textContent = full ? when.title : date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  });
  const text = document.createElement('div');
  text.className = 'text';
  text.dir = 'auto';
  text.append(...linked(m.text));
  meta.append(when);
  li.append(meta, text);
  if (Array.isArray(m.files) && m.files.length) li.append(filesOf(m.files));
  return li;
}

const INLINE = ['image/jpeg', 'image/png', 'image/webp', 'image/gif'];
const kib = (bytes) => (bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

/** A message's files: photos as pictures with their room kept before they load, the rest as links. */
function filesOf(files) {
  const box = document.createElement('div');
  box.className = 'files';
  for (const f of files) {
    if (typeof f?.id !== 'string' || !/^[0-9a-f]{32}$/.test(f.id)) continue;
    const href = `/media/${f.id}`;
    const a = document.createElement('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener';
    if (INLINE.includes(f.type) && f.width > 0 && f.height > 0) {
      const img = document.createElement('img');
      img.src = href;
      img.width = f.width;
      img.height = f.height;
      img.loading = 'lazy';
      img.decoding = 'async';
      img.alt = f.name || 'photo';
      // Let go by the server to make room for newer ones.
      img.addEventListener('error', () => {
        const gone = document.createElement('span');
        gone.className = 'gone';
        gone.textContent = `${f.name || 'photo'}: no longer kept`;
        a.replaceWith(gone);
      }, { once: true });
      a.append(img);
    } else {
      a.download = f.name || 'file';
      a.textContent = `${f.name || 'file'} (${f.type || 'file'}, ${kib(f.size || 0)})`;
    }
    box.append(a);
  }
  return box;
}

/** A hue for a name, the same on every device. */
function hue(name) {
  let h = 2166136261;
  for (const c of name) h = Math.imul(h ^ c.codePointAt(0), 16777619);
  return (h >>> 0) % 360;
}

/** The text as nodes, with http: and https: addresses as links; never as HTML. */
function linked(text) {
  const nodes = [];
  const re = /\bhttps?:\/\/[^\s<>"]+/gi;
  let at = 0;
  for (let found = re.exec(text); found; found = re.exec(text)) {
    // Sentence punctuation after an address belongs to the sentence.
    const url = found[0].replace(/[.,;:!?)\]'"]+$/, '');
    let href;
    try { href = new URL(url); } catch { continue; }
    if (href.protocol !== 'http:' && href.protocol !== 'https:') continue;
    nodes.push(document.createTextNode(text.slice(at, found.index)));
    const a = document.createElement('a');
    a.href = href.href;
    a.textContent = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    nodes.push(a);
    at = found.index + url.length;
    re.lastIndex = at;
  }
  nodes.push(document.createTextNode(text.slice(at)));
  return nodes;
}

// ---- days and groups ------------------------------------------------------------
/** Messages from one person this close together share one name. */
const GROUP_MS = 5 * 60 * 1000;
const dayOf = (time) => new Date(time).toDateString();
function dayLabel(time) {
  const day = new Date(time);
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (day.toDateString() === today.toDateString()) return 'Today';
  if (day.toDateString() === yesterday.toDateString()) return 'Yesterday';
  const options = { weekday: 'short', day: 'numeric', month: 'short' };
  if (day.getFullYear() !== today.getFullYear()) options.year = 'numeric';
  return day.toLocaleDateString([], options);
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
    const sameSender = prev && !newDay && prev.name === m.name && Boolean(prev.mod) === Boolean(m.mod)
      && m.time - prev.time < GROUP_MS && el.classList.contains('own') === before.classList.contains('own');
    el.classList.toggle('cont', Boolean(sameSender));
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

// ---- moderation (only with the moderator's cookie) --------------------------------
/** Adds the moderator's menu to a message: delete it, or mute whoever sent it. */
function moderation(li, id) {
  const toggle = document.createElement('button');
  toggle.type = 'button';
  toggle.className = 'mod-toggle';
  toggle.textContent = '⋯';
  toggle.setAttribute('aria-label', 'Moderate this message');
  toggle.setAttribute('aria-expanded', 'false');
  const menu = document.createElement('div');
  menu.className = 'mod-actions';
  menu.hidden = true;
  const action = (label, run) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', async () => {
      menu.hidden = true;
      toggle.setAttribute('aria-expanded', 'false');
      const reason = await run();
      if (reason) note(li, reason);
    });
    return b;
  };
  const path = `/message/${encodeURIComponent(id)}`;
  menu.append(
    action('Delete', async () => {
      const res = await moderate(path, { method: 'DELETE' });
      // The deletion event removes it everywhere, here too; no need to wait for it.
      if (res === true) removeMessage(id);
      return res === true ? '' : res;
    }),
    action(`Mute sender ${MUTE_MINUTES} min`, async () => {
      const res = await moderate(`${path}/mute`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ minutes: String(MUTE_MINUTES) }),
      });
      return res === true ? `Sender muted for ${MUTE_MINUTES} minutes` : res;
    }),
  );
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    toggle.setAttribute('aria-expanded', String(!menu.hidden));
  });
  li.querySelector('.meta').append(toggle);
  li.append(menu);
}

/** A refusal's code and reason, as the server sends them to a script (JSON). */
async function refusal(res) {
  try {
    const body = await res.json();
    return { code: String(body.error || ''), message: String(body.message || '') };
  } catch {
    return { code: '', message: '' };
  }
}

/** A moderator's request: `true` when done, else the reason to show. */
async function moderate(path, init) {
  try {
    const res = await fetch(path, { ...init, headers: { ...init.headers, Accept: 'application/json' } });
    if (res.ok) return true;
    return (await refusal(res)).message || `not done (${res.status})`;
  } catch {
    return 'not done: no connection';
  }
}

/** A line of small print under a message, replacing any earlier one. */
function note(li, text) {
  li.querySelector('.problem')?.remove();
  const p = document.createElement('div');
  p.className = 'problem';
  p.textContent = text;
  li.append(p);
}

function removeMessage(id) {
  const entry = shown.get(id);
  if (!entry) return;
  shown.delete(id);
  unfit(entry.li);
  showEmpty();
}

/** Adds a bubble above the unconfirmed ones, following the newest unless the reader scrolled up. */
function place(li, isOwn) {
  const follow = nearBottom();
  list.insertBefore(li, list.querySelector('.msg.pending, .msg.failed'));
  if (follow || isOwn) scrollToEnd();
  else hint.hidden = false;
}

function showMessage(m) {
  if (!m || typeof m.id !== 'string') return;
  lastId = m.id;
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
  const li = bubble(m, isOwn ? 'own' : '');
  li.dataset.id = m.id;
  if (isHost) moderation(li, m.id);
  const mention = !isOwn && namesMe(m.text);
  if (mention) li.classList.add('mention');
  shown.set(m.id, { m, li });
  // Still on the server after a reset: no longer only on this device.
  list.querySelector(`.msg.stale[data-stale-id="${CSS.escape(m.id)}"]`)?.remove();
  place(li, isOwn);
  fitIn(li);
  showEmpty();
  if (!isOwn) notice(m, mention);
  if (shown.size > MAX_SHOWN) {
    const oldest = list.querySelector('.msg[data-id]');
    shown.delete(oldest.dataset.id);
    unfit(oldest);
  }
}

/** An empty chat says what to do. */
function showEmpty() {
  $('empty').hidden = list.querySelector('.msg') !== null;
}

// ---- older messages, as the list is scrolled up ------------------------------------
let olderMore = true;
let olderLoading = false;
/** How close to the top (px) loads the page of messages before the first shown. */
const OLDER_AT_PX = 200;
async function loadOlder() {
  const first = list.querySelector('.msg[data-id]');
  if (olderLoading || !olderMore || !first || scroller.scrollTop > OLDER_AT_PX) return;
  olderLoading = true;
  try {
    const res = await fetch(`/messages?before=${encodeURIComponent(first.dataset.id)}&limit=50`);
    if (!res.ok) return;
    const page = await res.json();
    olderMore = Boolean(page.more);
    // Where the reader is stays where it is, however much goes in above.
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    for (const m of page.messages.reverse()) {
      if (shown.has(m.id) || !list.contains(first)) continue;
      const li = bubble(m, own.has(m.id) ? 'own' : '');
      li.dataset.id = m.id;
      if (isHost) moderation(li, m.id);
      shown.set(m.id, { m, li });
      const top = list.querySelector('.msg[data-id]');
      list.insertBefore(li, top.previousElementSibling?.matches('.day') ? top.previousElementSibling : top);
      fitIn(li);
    }
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  } catch { /* again at the next scroll */ } finally {
    olderLoading = false;
  }
}
scroller.addEventListener('scroll', loadOlder, { passive: true });

// ---- nothing new goes unnoticed ------------------------------------------------
// While the page is hidden, new messages from others count in the title and as a dot
// on the tab's icon, cleared when it is seen again; with the chat muted only those
// that name this person (@name) count. A sound and a vibration, when turned on; a
// system notification where the browser has them (not on plain http from a LAN
// address: that is not a secure context).
const PREFS_KEY = 'lanchat.prefs';
const prefs = { muted: false, sound: false, notify: false, ...(parse(store.get(PREFS_KEY)) || {}) };
const savePrefs = () => store.set(PREFS_KEY, JSON.stringify(prefs));
const TITLE = document.title;
const iconLinks = [...document.querySelectorAll('link[rel~="icon"]')];
const iconHrefs = iconLinks.map((l) => l.href);
let unseen = 0;
/** Counting starts once the first replay is in: what a page is shown on opening is not new. */
let settled = false;

/** Whether a text names this person: "@name", whole, in any case. */
function namesMe(text) {
  const name = nameInput.value.trim();
  if (!name) return false;
  const at = `@${name}`.toLocaleLowerCase();
  const lower = text.toLocaleLowerCase();
  for (let i = lower.indexOf(at); i >= 0; i = lower.indexOf(at, i + 1)) {
    const next = lower[i + at.length];
    if (next === undefined || !/[\p{L}\p{N}_]/u.test(next)) return true;
  }
  return false;
}

function notice(m, mention) {
  if (!settled || (prefs.muted && !mention)) return;
  if (document.hidden) {
    unseen += 1;
    showUnseen();
    if (prefs.notify && window.Notification?.permission === 'granted') {
      try { new Notification(m.name, { body: m.text, tag: 'lanchat' }); } catch { /* not allowed here */ }
    }
  }
  if (prefs.sound && (document.hidden || mention)) alert_();
}

function showUnseen() {
  document.title = unseen ? `(${unseen}) ${TITLE}` : TITLE;
  if (!unseen) {
    iconLinks.forEach((l, i) => { l.href = iconHrefs[i]; });
    return;
  }
  const img = new Image();
  img.onload = () => {
    const size = 64;
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = size;
    const g = canvas.getContext('2d');
    if (!g) return;
    g.drawImage(img, 0, 0, size, size);
    g.fillStyle = '#d92d20';
    g.strokeStyle = '#ffffff';
    g.lineWidth = 4;
    g.beginPath();
    g.arc(size - 16, 16, 14, 0, 2 * Math.PI);
    g.fill();
    g.stroke();
    if (unseen) for (const l of iconLinks) l.href = canvas.toDataURL('image/png');
  };
  img.src = '/icon-192.png';
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && unseen) {
    unseen = 0;
    showUnseen();
  }
});

let audio = null;
/** A short, soft tone and a vibration: for a new message, when turned on. */
function alert_() {
  if (navigator.vibrate) navigator.vibrate(80);
  if (!audio || audio.state !== 'running') return;
  const tone = audio.createOscillator();
  const gain = audio.createGain();
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0.0001, audio.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.01);
  gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.25);
  tone.connect(gain).connect(audio.destination);
  tone.start();
  tone.stop(audio.currentTime + 0.3);
}

function unlockAudio() {
  // Browsers let a page make a sound only after a tap; this runs inside one.
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) return;
  audio ||= new Context();
  audio.resume?.();
}

{
  const muted = $('pref-muted');
  const sound = $('pref-sound');
  const notify = $('pref-notify');
  muted.checked = prefs.muted;
  sound.checked = prefs.sound;
  notify.checked = prefs.notify;
  $('prefs').hidden = false; // without JavaScript there is nothing to set
  muted.addEventListener('change', () => { prefs.muted = muted.checked; savePrefs(); });
  sound.addEventListener('change', () => {
    prefs.sound = sound.checked;
    savePrefs();
    if (sound.checked) { unlockAudio(); alert_(); }
  });
  if (prefs.sound) addEventListener('pointerdown', unlockAudio, { once: true });
  if (window.Notification && window.isSecureContext) {
    notify.closest('label').hidden = false;
    notify.addEventListener('change', async () => {
      prefs.notify = notify.checked;
      savePrefs();
      if (notify.checked && Notification.permission === 'default') await Notification.requestPermission();
    });
  }
}

/**
 * The server does not know the last id this page saw: it restarted without its
 * history, or this page was away longer than the history kept. Everything it still
 * has follows. What this page showed stays, under a note, until the server sends it
 * again: what it never does was lost with the server's memory and is now only here.
 */
function reset() {
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
    const note = document.createElement('li');
    note.className = 'day restart';
    note.textContent = 'The server restarted: the messages above are only on this device.';
    stale[stale.length - 1].after(note);
  }
  olderMore = true;
}

function setOnline(n) {
  online = n;
  onlineEl.textContent = `${n} online`;
}

function setStatus(state) {
  statusEl.hidden = false; // hidden in the HTML: without JavaScript there is no stream
  statusEl.dataset.state = state;
  statusEl.textContent = state;
}


/** One event from the stream, whether this tab's own or relayed by the leader. */
function handle(kind, data, id) {
  lastByte = Date.now();
  if (kind === 'message') showMessage(parse(data));
  else if (kind === 'delete') {
    // A deletion has its own place in the id sequence, after the message it removes.
    if (id) lastId = id;
    const d = parse(data);
    if (d) removeMessage(d.id);
  }
  else if (kind === 'presence') { settled = true; const p = parse(data); if (p) setOnline(p.online); }
  else if (kind === 'reset') reset();
  else if (kind === 'ping') { const ms = Number(data); if (ms > 0) heartbeat = ms; }
}

// ---- the stream -------------------------------------------------------------------
const channel = 'BroadcastChannel' in window ? new BroadcastChannel('lanchat') : null;
const relay = (msg) => { if (channel) channel.postMessage(msg); };
let leading = false;
/** Streaming without the lead (the leader went quiet): give way when a leader relays. */
let stopgap = false;
let source = null;
let reopenTimer = 0;

/** Shows the stream's state here and tells the other tabs. */
function announce(state) {
  setStatus(state);
  // To followers: the leader's stream state, shown as their own.
  relay({ type: 'status', state });
}

function openStream() {
  closeStream();
  // A new EventSource sends no Last-Event-ID header; the query carries it instead.
  const url = lastId ? `/events?last_event_id=${encodeURIComponent(lastId)}` : '/events';
  const es = new EventSource(url);
  source = es;
  lastByte = Date.now();
  es.onopen = () => { lastByte = Date.now(); announce('connected'); resendNow(); };
  es.onerror = () => {
    if (es !== source) return;
    announce(navigator.onLine === false ? 'offline' : 'reconnecting');
    // CLOSED means the browser gave up (a non-200 answer); try again ourselves.
    if (es.readyState === EventSource.CLOSED) reopenTimer = setTimeout(openStream, REOPEN_AFTER_GIVE_UP_MS);
  };
  const on = (kind) => (e) => {
    if (es !== source) return;
    handle(kind, e.data, e.lastEventId);
    // To followers: every event of the stream, as it came.
    relay({ type: 'event', kind, data: e.data, id: e.lastEventId });
  };
  es.onmessage = on('message');
  for (const kind of ['presence', 'reset', 'ping', 'delete']) es.addEventListener(kind, on(kind));
}

function closeStream() {
  clearTimeout(reopenTimer);
  if (source) source.close();
  source = null;
}

function lead() {
  stopgap = false;
  if (leading) return;
  leading = true;
  openStream();
}

function stepDown() {
  leading = false;
  closeStream();
}

if (channel) {
  channel.onmessage = ({ data: msg }) => {
    if (msg.type === 'event' && stopgap) {
      // A leader is relaying again: two streams from one browser would count twice
      // and cost the server twice; this tab follows again.
      stopgap = false;
      stepDown();
      handle(msg.kind, msg.data, msg.id);
    } else if (msg.type === 'event' && !leading) handle(msg.kind, msg.data, msg.id);
    else if (msg.type === 'status' && !leading) {
      lastByte = Date.now();
      setStatus(msg.state);
      if (msg.state === 'connected') resendNow();
    }
    else if (msg.type === 'own') { own.add(msg.id); markOwn(msg.id); }
    else if (msg.type === 'hello' && leading) {
      relay({
        type: 'snapshot',
        messages: [...shown.values()].map((e) => e.m),
        online,
        heartbeat,
        state: statusEl.dataset.state,
      });
    } else if (msg.type === 'snapshot' && !leading) {
      lastByte = Date.now();
      heartbeat = msg.heartbeat || heartbeat;
      for (const m of msg.messages) showMessage(m);
      settled = true;
      if (msg.online != null) setOnline(msg.online);
      setStatus(msg.state);
    }
  };
}

/** Takes the lead when no other tab of this browser has it. */
function elect() {
  if (!channel) return lead();
  if (navigator.locks && navigator.locks.request) {
    // Held until this tab closes; then the next waiting tab gets it.
    navigator.locks.request('lanchat-stream', () => { lead(); return new Promise(() => {}); });
  } else {
    // No Web Locks (plain http on a LAN address is not a secure context): a lease
    // in localStorage, renewed while the tab runs. A throttled background tab lets
    // it lapse, and a visible tab takes over.
    const tab = Math.random().toString(36).slice(2);
    const tick = () => {
      const lease = parse(store.get(LEASE_KEY));
      const now = Date.now();
      if (!lease || lease.tab === tab || now - lease.t > LEASE_MS) {
        store.set(LEASE_KEY, JSON.stringify({ tab, t: now }));
        if (parse(store.get(LEASE_KEY))?.tab === tab) lead();
      } else if (leading) {
        stepDown();
      }
    };
    tick();
    setInterval(tick, LEASE_RENEW_MS);
    addEventListener('pagehide', () => { if (leading) store.remove(LEASE_KEY); });
  }
  // To the leader, if any: send me what you show.
  relay({ type: 'hello' });
}

// A phone that wakes can hold an EventSource that looks open and is dead: reopen on
// wake, and whenever nothing (not even a heartbeat) came for twice the interval.
function checkAlive() {
  if (document.hidden) return;
  const now = Date.now();
  if (now - lastByte > QUIET_MS && now - lastPing > QUIET_MS) checkServer();
  if (Date.now() - lastByte > 2 * heartbeat) {
    // A follower whose leader went quiet (frozen in the background) streams itself
    // until a leader is heard again.
    if (!leading) stopgap = true;
    leading = true;
    openStream();
  }
}
setInterval(checkAlive, ALIVE_CHECK_MS);
document.addEventListener('visibilitychange', () => {
  if (document.hidden) return;
  if (leading) openStream();
  else checkAlive();
});
addEventListener('online', () => { if (leading) openStream(); resendNow(); });
addEventListener('offline', () => { if (leading) announce('offline'); });

// ---- sending: the outbox ---------------------------------------------------------
// Every message typed goes into an outbox kept in localStorage (in memory where there
// is none, as in some sign-in sheets) and leaves it only when the server has it, or
// refused it for good. The outbox is sent in order, one at a time, by itself: when
// the server answers again, after a reload, or when the tab is opened again later.
// Each message carries an id made here (cid): sent twice (an answer lost on the
// way), the server answers with the message it already has and nobody sees it twice.

/** id -> pending bubble, by cid, for the messages of this page's outbox. */
const pendingByCid = new Map();
let memoryOutbox = [];
const canStore = (() => {
  try { localStorage.setItem('lanchat.probe', '1'); localStorage.removeItem('lanchat.probe'); return true; } catch { return false; }
})();
function readOutbox() {
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

function newCid() {
  // crypto.randomUUID needs a secure context; a LAN address over http is not one.
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** The bubble of an outbox item, made if this page has none yet. */
function pendingBubble(item) {
  let li = pendingByCid.get(item.cid);
  if (!li) {
    li = bubble({ name: item.name || 'anonymous', text: item.text, time: item.at || Date.now() }, 'own pending');
    li.dataset.cid = item.cid;
    if (item.names?.length) {
      const files = document.createElement('div');
      files.className = 'files';
      files.textContent = item.names.join(', ');
      li.append(files);
    }
    pendingByCid.set(item.cid, li);
    list.append(li);
    scrollToEnd();
  }
  return li;
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
  // To every other tab: this id is ours, draw it as own.
  relay({ type: 'own', id: m.id });
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

/** Sends the outbox, oldest first, until it is empty or the server cannot be reached. */
async function sendOutbox() {
  if (sending) return;
  sending = true;
  clearTimeout(resendTimer);
  try {
    for (;;) {
      const [item] = readOutbox();
      if (!item) break;
      const li = pendingBubble(item);
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
  const slow = setTimeout(() => { setSendState(li, 'sending…'); checkServer(); }, SLOW_SEND_MS);
  const abort = new AbortController();
  sendAbort = abort;
  const giveUp = setTimeout(() => abort.abort(), SEND_TIMEOUT_MS);
  try {
    const fields = { name: item.name, message: item.text, cid: item.cid, sent: String(Date.now()) };
    let res;
    if (item.names?.length) {
      const files = attachments.get(item.cid) || await uploads.get(item.cid);
      if (!files) {
        dropFromOutbox(item.cid);
        pendingByCid.delete(item.cid);
        fail(li, item, 'the files were lost on this device; attach them again');
        return 0;
      }
      res = await upload(fields, files, li, abort.signal);
    } else {
      res = await fetch('/message', {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        // The phone's clock: a Pi with no network to set its own takes the time from
        // the phones (the server uses it only when its clock is clearly behind).
        body: new URLSearchParams(fields),
        signal: abort.signal,
      });
    }
    if (res.status === 201) {
      dropFromOutbox(item.cid);
      forgetFiles(item.cid);
      confirmOwn(await res.json(), li);
      return 0;
    }
    if (res.status === 429) {
      // Posting too fast: the server says how long to wait; send it then, by itself.
      const seconds = Math.max(1, Number(res.headers.get('Retry-After')) || 1);
      setSendState(li, `Slow down: sending again in ${seconds} s`);
      return seconds * 1000;
    }
    const reason = (await refusal(res)).message || `not sent (${res.status})`;
    if (res.status >= 500 || res.status === 408) {
      // The server is there but cannot take it now (a full disk, busy): again later.
      setSendState(li, `${reason}; trying again…`);
      return backoff();
    }
    // Refused for good (too long, too large, muted, no key): it leaves the outbox,
    // the text stays.
    dropFromOutbox(item.cid);
    forgetFiles(item.cid);
    pendingByCid.delete(item.cid);
    fail(li, item, reason);
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

function fail(li, item, reason) {
  li.className = 'msg own failed';
  li.querySelector('.state')?.remove();
  li.querySelector('.problem')?.remove();
  const problem = document.createElement('div');
  problem.className = 'problem';
  const why = document.createElement('span');
  why.textContent = reason;
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.textContent = 'Retry';
  retry.addEventListener('click', () => {
    li.remove();
    queue(item.text, item.name);
  });
  problem.append(why, retry);
  li.append(problem);
}

/** A new message from the box: into the outbox, on screen, on its way. */
async function queue(text, name, files = []) {
  const item = { cid: newCid(), name, text, at: Date.now() };
  if (files.length) {
    item.names = files.map((f) => f.name);
    attachments.set(item.cid, files);
    pendingBubble(item);
    // The files are kept before the message joins the outbox: an outbox entry
    // whose files a closed tab never finished writing could not be sent.
    await uploads.put(item.cid, files);
  }
  addToOutbox(item);
  pendingBubble(item);
  sendOutbox();
}

// ---- photos and files ----------------------------------------------------------------
// A photo is made smaller on the phone before it travels: at most MAX_SIDE pixels
// on its longest side, turned upright by its EXIF orientation and encoded again as
// JPEG, which leaves its metadata (the GPS position above all) behind. Other files
// go as they are. Files waiting to be sent are kept in IndexedDB (which plain http
// has too), so a reload or a closed tab loses none.
const MAX_SIDE = 1600;
const JPEG_QUALITY = 0.82;
/** cid -> [{ name, type, blob }] of the outbox's messages with files, in this tab. */
const attachments = new Map();
/** Files chosen for the next message. */
let chosen = [];

const uploads = (() => {
  let db = null;
  const open = () => (db ||= new Promise((resolve, reject) => {
    const req = indexedDB.open('lanchat', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('uploads');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  }));
  const run = async (mode, act) => {
    const store_ = (await open()).transaction('uploads', mode).objectStore('uploads');
    return new Promise((resolve, reject) => {
      const req = act(store_);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  };
  return {
    put: (cid, files) => run('readwrite', (s) => s.put(files, cid)).catch(() => {}),
    get: (cid) => run('readonly', (s) => s.get(cid)).catch(() => undefined),
    del: (cid) => run('readwrite', (s) => s.delete(cid)).catch(() => {}),
  };
})();

function forgetFiles(cid) {
  if (attachments.delete(cid)) uploads.del(cid);
  else uploads.del(cid);
}

/** A photo made small and upright, without its metadata; any other file as it is. */
async function prepare(file) {
  if (!/^image\/(jpeg|png|webp|avif|bmp|heic|heif)$/i.test(file.type)) {
    return { name: file.name || 'file', type: file.type, blob: file };
  }
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
  if (!blob) throw new Error('not encoded');
  const base = (file.name || 'photo').replace(/\.[^.]*$/, '');
  return { name: `${base}.jpg`, type: 'image/jpeg', blob };
}

/** Posts a message with files, showing the upload's progress on its bubble. */
function upload(fields, files, li, signal) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(fields)) data.append(k, v);
    for (const f of files) data.append('file', f.blob, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/message');
    xhr.setRequestHeader('Accept', 'application/json');
    let bar = li.querySelector('progress');
    if (!bar) {
      bar = document.createElement('progress');
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute('aria-label', 'Upload');
      li.append(bar);
    }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      bar.remove();
      const headers = new Headers();
      const retry = xhr.getResponseHeader('Retry-After');
      if (retry) headers.set('Retry-After', retry);
      resolve(new Response(xhr.responseText, { status: xhr.status, headers }));
    };
    xhr.onerror = () => reject(new Error('network'));
    xhr.onabort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', () => xhr.abort());
    xhr.send(data);
  });
}

{
  document.documentElement.classList.add('js');
  const picker = $('attach');
  const box = $('attached');
  const show = () => {
    box.replaceChildren(...chosen.map((f, i) => {
      const chip = document.createElement('span');
      chip.className = 'chip';
      const label = document.createElement('span');
      label.textContent = f.name;
      const drop = document.createElement('button');
      drop.type = 'button';
      drop.textContent = '✕';
      drop.setAttribute('aria-label', `Remove ${f.name}`);
      drop.addEventListener('click', () => { chosen.splice(i, 1); show(); });
      chip.append(label, drop);
      return chip;
    }));
    box.hidden = chosen.length === 0;
  };
  picker.addEventListener('change', async () => {
    const files = [...picker.files];
    picker.value = '';
    for (const file of files) {
      let ready;
      try {
        ready = await prepare(file);
      } catch {
        // Not sent as it is: its metadata (a GPS position) would go with it.
        ready = { name: `${file.name}: this photo cannot be read here`, failed: true };
        setTimeout(() => { chosen = chosen.filter((c) => c !== ready); show(); }, 5000);
      }
      chosen.push(ready);
      show();
    }
  });
  // For the submit handler: what is attached goes with the text, and is then cleared.
  window.takeChosen = () => {
    const files = chosen.filter((f) => !f.failed);
    chosen = [];
    show();
    return files;
  };
}

// ---- is the server there? -------------------------------------------------------
// A stalled connection (Wi-Fi frozen, no reset) looks like a quiet one. A visible
// page whose stream has been quiet for a few seconds, or that is sending, asks the
// server with a small request; no answer in time means the connection is gone. This
// costs a phone in a pocket nothing: a hidden page does not ask.
let pinging = false;
let lastPing = 0;
async function checkServer() {
  if (pinging) return;
  pinging = true;
  lastPing = Date.now();
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), PING_TIMEOUT_MS);
  let ok = false;
  try {
    const res = await fetch('/ping', { cache: 'no-store', signal: abort.signal });
    ok = res.status === 204;
  } catch { /* no answer */ } finally {
    clearTimeout(timer);
    pinging = false;
  }
  if (ok) return;
  announce(navigator.onLine === false ? 'offline' : 'reconnecting');
  sendAbort?.abort();
  if (leading) openStream();
}

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight}px`;
}

// The limits as the server counts them: in characters (Unicode code points, a line
// break as one). The markup's maxlength, left for pages without JavaScript, counts
// UTF-16 units and would stop a text of emoji at half its length.
const LIMITS = [[input, 2000, 'message'], [nameInput, 40, 'name']];
const characters = (text) => [...text.replace(/\r\n?/g, '\n')].length;
/** The counter shows from this many characters left, so a long message sees it coming. */
const COUNT_FROM = 200;
const counter = $('counter');
function withinLimits() {
  let fine = true;
  for (const [field, max, what] of LIMITS) {
    const count = characters(field === nameInput ? field.value.trim() : field.value);
    const over = count - max;
    field.setCustomValidity(over > 0 ? `The ${what} is ${over} characters over the limit of ${max}.` : '');
    fine &&= over <= 0;
    if (field === input) {
      counter.hidden = max - count > COUNT_FROM;
      counter.textContent = over > 0 ? `${over} over the limit of ${max}` : `${count} / ${max}`;
      counter.classList.toggle('over', over > 0);
    }
  }
  return fine;
}
for (const [field] of LIMITS) {
  field.removeAttribute('maxlength');
  field.addEventListener('input', withinLimits);
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = input.value;
  if (!text.trim() && !chosen.some((f) => !f.failed)) return;
  // What is over a limit stays in the box, with the reason, to be shortened.
  if (!withinLimits()) {
    form.reportValidity();
    return;
  }
  const files = window.takeChosen();
  input.value = '';
  autosize();
  queue(text.trim() ? text : '', nameInput.value.trim(), files);
  input.focus();
});
// On a phone's keyboard Enter is the only way to break a line, and Send is a thumb
// away: Enter breaks the line there. With a hardware keyboard Enter sends and
// Shift+Enter breaks the line.
const touchOnly = matchMedia('(hover: none) and (pointer: coarse)').matches;
if (touchOnly) input.setAttribute('enterkeyhint', 'enter');
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !touchOnly) {
    e.preventDefault();
    form.requestSubmit();
  }
});
input.addEventListener('input', autosize);

// Keep the input bar above the on-screen keyboard where the browser does not
// resize the page for it (iOS Safari).
if (window.visualViewport) {
  const fit = () => {
    const follow = nearBottom();
    document.body.style.height = `${window.visualViewport.height}px`;
    if (follow) scrollToEnd();
  };
  window.visualViewport.addEventListener('resize', fit);
}

// ---- hotspot sign-in sheet -----------------------------------------------------------
// Opened from a hotspot's redirect (?portal): most likely in the phone's sign-in sheet,
// a small browser that forgets everything when it closes. Continue tells the server to
// let this phone online, so the sheet can close without the phone leaving the Wi-Fi;
// then the real browser keeps the name and messages.
if (new URLSearchParams(location.search).has('portal')) {
  const box = $('portal-note');
  const text = $('portal-text');
  const go = $('portal-continue');
  const here = `http://${location.host}/`;
  text.textContent = `This is the chat of this Wi-Fi. Tap Continue to stay connected, then open ${here} (or any http:// address) in your browser for the best experience: this window forgets your name and messages when it closes.`;
  box.hidden = false;
  box.addEventListener('submit', async (e) => {
    e.preventDefault();
    go.disabled = true;
    try {
      const res = await fetch('/portal', { method: 'POST', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(String(res.status));
      text.textContent = `You are connected. Close this window (Done), then open ${here} in your browser.`;
      go.hidden = true;
      history.replaceState(null, '', '/');
    } catch {
      text.textContent = 'Could not reach the chat; try Continue again.';
      go.disabled = false;
    }
  });
}

elect();
// What was typed and not sent before this page was closed or reloaded: on its way.
for (const item of readOutbox()) pendingBubble(item);
sendOutbox();
