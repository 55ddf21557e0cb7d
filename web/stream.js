// Messages arrive on one EventSource per browser: the tab that holds the lead opens
// it and relays every event to the other tabs over a BroadcastChannel (browsers
// allow six HTTP/1.1 connections per host; a seventh tab would hang). A phone that
// wakes can hold a stream that looks open and is dead: it is checked and reopened.
import { $, channel, emit, on, parse, relay, store } from './env.js';
import { change, last, markOwn, reset, shown, showMessage } from './timeline.js';
import { counting } from './notice.js';

const statusEl = $('status');
const onlineEl = $('online');
const LEASE_KEY = 'lanchat.leader';
/** After the browser gave up on the stream (a non-200 answer), try again this late. */
const REOPEN_AFTER_GIVE_UP_MS = 5000;
/** A localStorage lead lapses when not renewed for this long... */
const LEASE_MS = 6000;
/** ...and its holder renews it this often. */
const LEASE_RENEW_MS = 2000;
/** How often a visible page checks that its stream is alive. */
const ALIVE_CHECK_MS = 1000;
/** A visible page asks whether the server is there after its stream was quiet this long... */
const QUIET_MS = 3000;
/** ...and takes no answer within this for none. */
const PING_TIMEOUT_MS = 3000;

let heartbeat = 15000;
let lastByte = Date.now();
let online = null;
let leading = false;
/** Streaming without the lead (the leader went quiet): give way when a leader relays. */
let stopgap = false;
let source = null;
let reopenTimer = 0;

function setOnline(n) {
  online = n;
  onlineEl.textContent = `${n} online`;
}

function setStatus(state) {
  statusEl.hidden = false; // hidden in the HTML: without JavaScript there is no stream
  statusEl.dataset.state = state;
  statusEl.textContent = state;
  // A count from before the connection dropped is no count: shown only while connected.
  onlineEl.hidden = state !== 'connected';
  if (state === 'connected') emit('connected');
}

/** Shows the stream's state here and tells the other tabs. */
function announce(state) {
  setStatus(state);
  // To followers: the leader's stream state, shown as their own.
  relay({ type: 'status', state });
}

/** One event from the stream, whether this tab's own or relayed by the leader. */
function handle(kind, data, id) {
  lastByte = Date.now();
  if (kind === 'message') showMessage(parse(data));
  else if (kind === 'delete' || kind === 'react' || kind === 'edit') change(kind, data, id);
  else if (kind === 'presence') { counting.on = true; const p = parse(data); if (p) setOnline(p.online); }
  else if (kind === 'reset') reset();
  else if (kind === 'ping') { const ms = Number(data); if (ms > 0) heartbeat = ms; }
}

function openStream() {
  closeStream();
  // A new EventSource sends no Last-Event-ID header; the query carries it instead.
  const url = last.id ? `/events?last_event_id=${encodeURIComponent(last.id)}` : '/events';
  const es = new EventSource(url);
  source = es;
  lastByte = Date.now();
  es.onopen = () => { lastByte = Date.now(); announce('connected'); };
  es.onerror = () => {
    if (es !== source) return;
    announce(navigator.onLine === false ? 'offline' : 'reconnecting');
    // CLOSED means the browser gave up (a non-200 answer); try again ourselves.
    if (es.readyState === EventSource.CLOSED) reopenTimer = setTimeout(openStream, REOPEN_AFTER_GIVE_UP_MS);
  };
  const to = (kind) => (e) => {
    if (es !== source) return;
    handle(kind, e.data, e.lastEventId);
    // To followers: every event of the stream, as it came.
    relay({ type: 'event', kind, data: e.data, id: e.lastEventId });
  };
  es.onmessage = to('message');
  for (const kind of ['presence', 'reset', 'ping', 'delete', 'react', 'edit']) es.addEventListener(kind, to(kind));
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
    } else if (msg.type === 'own') markOwn(msg.id);
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
      counting.on = true;
      if (msg.online != null) setOnline(msg.online);
      setStatus(msg.state);
    }
  };
}

/** Takes the lead when no other tab of this browser has it. */
export function elect() {
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
addEventListener('online', () => { if (leading) openStream(); emit('connected'); });
addEventListener('offline', () => { if (leading) announce('offline'); });

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
  emit('lost');
  if (leading) openStream();
}
on('slow', checkServer);
