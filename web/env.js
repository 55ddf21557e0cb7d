// What every part of the page uses: element lookup, storage that survives a private
// window, the tabs' channel, a small event bus (the parts tell each other what
// happened instead of importing each other in circles), and the limits the server
// says it keeps.

export const $ = (id) => document.getElementById(id);

export const parse = (data) => { try { return JSON.parse(data); } catch { return null; } };

/** localStorage where there is one; nothing (and no error) where a sign-in sheet has none. */
export const store = {
  get(key) { try { return localStorage.getItem(key); } catch { return null; } },
  set(key, value) { try { localStorage.setItem(key, value); } catch { /* private mode */ } },
  remove(key) { try { localStorage.removeItem(key); } catch { /* private mode */ } },
};

export const canStore = (() => {
  try { localStorage.setItem('lanchat.probe', '1'); localStorage.removeItem('lanchat.probe'); return true; } catch { return false; }
})();

/**
 * Set by the server, with the key in a cookie scripts cannot read, when this browser
 * opened the moderator link. It only shows the actions: each one checks the key.
 */
export const isHost = document.cookie.split(/;\s*/).includes('lanchat_moderator=1');

/** A random id made here: crypto.randomUUID needs a secure context, which plain http on a LAN is not. */
export function newId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * This browser's device secret, made once: sent with each post, from which the server
 * derives the public tag that tells two people of one name apart. It is no account:
 * a browser that forgets it (a private window, cleared data) is a new device.
 */
export const device = store.get('lanchat.device') || (() => {
  const made = newId() + newId();
  store.set('lanchat.device', made);
  return made;
})();

/** This browser's public device tag, once the server has said it (with a post or a reaction). */
export const tag = { id: store.get('lanchat.tag') || '' };
export function learnTag(id) {
  if (typeof id !== 'string' || !id || id === tag.id) return;
  tag.id = id;
  store.set('lanchat.tag', id);
}

/** Photos and files (files.js), loaded when first needed: most messages have none. */
export const files = { module: null };
export const loadFiles = () => import('./files.js').then((m) => (files.module = m));

// The tabs of this browser share one stream over this channel (see stream.js).
export const channel = 'BroadcastChannel' in window ? new BroadcastChannel('lanchat') : null;
export const relay = (msg) => { if (channel) channel.postMessage(msg); };

const handlers = new Map();
/** Calls `fn` whenever `name` is emitted. */
export function on(name, fn) {
  if (!handlers.has(name)) handlers.set(name, []);
  handlers.get(name).push(fn);
}
export function emit(name, ...args) {
  for (const fn of handlers.get(name) || []) fn(...args);
}

/** The limits the server keeps (GET /limits); these until it has said. */
export const limits = {
  message_chars: 2000,
  name_chars: 40,
  files_per_message: 10,
  max_upload: 16 * 1024 * 1024,
  inline_types: ['image/jpeg', 'image/png', 'image/webp', 'image/gif'],
  mute_minutes: 10,
  reactions: ['👍', '❤️', '😂', '😮', '😢', '🙏'],
  edit_minutes: 15,
};
export const limitsLoaded = fetch('/limits', { headers: { Accept: 'application/json' } })
  .then((res) => (res.ok ? res.json() : null))
  .then((given) => { if (given) Object.assign(limits, given); emit('limits'); })
  .catch(() => {});

/** A refusal's stable code and its reason, as the server sends them to a script. */
export async function refusal(res) {
  try {
    const body = await res.json();
    return { code: String(body.error || ''), message: String(body.message || ''), ...body };
  } catch {
    return { code: '', message: '' };
  }
}
