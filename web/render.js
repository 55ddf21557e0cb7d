// A message as a bubble: as it now stands (edited, deleted, its reactions, what it
// answers). Everything from the network is set as text (textContent, attributes),
// never parsed as HTML.
import { isHost, limits, tag } from './env.js';

const hhmm = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

/** A bubble for message `m` (`id`, `name`, `text`, `time`, optional `mod`, `files`). */
export function bubble(m, classes) {
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
  // Told apart from another of the same name by its device (see timeline.js).
  const tag = document.createElement('span');
  tag.className = 'tag';
  meta.append(tag);
  const when = document.createElement('time');
  const date = new Date(m.time);
  when.dateTime = date.toISOString();
  // Written long before it could be sent (it waited for the network): both times.
  const short = m.written ? `written ${hhmm(new Date(m.written))} · sent ${hhmm(date)}` : hhmm(date);
  // Two times are long: they take a line of their own rather than squeeze the name.
  if (m.written) li.classList.add('late');
  when.textContent = short;
  // The whole date: on hover, and on a tap (a phone has no hover).
  when.title = date.toLocaleString([], { dateStyle: 'full', timeStyle: 'short' });
  when.addEventListener('click', () => {
    const full = when.dataset.full !== '1';
    when.dataset.full = full ? '1' : '';
    when.textContent = full ? when.title : short;
  });
  const text = document.createElement('div');
  text.className = 'text';
  text.dir = 'auto';
  meta.append(when);
  li.append(meta, text);
  if (m.id) {
    // What can be done with it (react, reply, edit or delete one's own): a menu, on
    // hover, a long press or the keyboard; its code loads at the first use.
    const button = (className, text, label, run) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = className;
      b.textContent = text;
      b.setAttribute('aria-label', label);
      b.addEventListener('click', run);
      meta.append(b);
      return b;
    };
    button('act', '⋯', 'Message actions', () => actions((a) => a.menu(li))).setAttribute('aria-haspopup', 'menu');
    // The host's menu: only on the page of whoever opened the moderator link.
    if (isHost) {
      button('mod-toggle', '⚑', 'Moderate this message', () => import('./moderation.js').then((md) => md.toggle(li)))
        .setAttribute('aria-expanded', 'false');
    }
    li.addEventListener('contextmenu', (e) => {
      if (e.target.closest('a, .reactions')) return;
      e.preventDefault();
      actions((a) => a.menu(li));
    });
  }
  setText(li, m);
  return li;
}

/** Runs `fn` with the module of message actions, loaded at its first use. */
export const actions = (fn) => import('./actions.js').then(fn);

/** The parts of a bubble that change after it is sent: text, files, quote, reactions. */
export function setText(li, m) {
  li.classList.toggle('deleted', Boolean(m.deleted));
  const text = li.querySelector('.text');
  if (m.deleted) {
    text.textContent = 'message deleted';
    for (const el of li.querySelectorAll('.files, .quote, .reactions, .edited')) el.remove();
    return;
  }
  text.replaceChildren(...linked(m.text));
  if (m.edited && !li.querySelector('.edited')) {
    const mark = document.createElement('span');
    mark.className = 'edited';
    mark.textContent = 'edited';
    li.querySelector('.meta time').after(mark);
  }
  li.querySelector('.quote')?.remove();
  if (m.reply) text.before(quoteOf(m.reply));
  if (Array.isArray(m.files) && m.files.length && !li.querySelector('.files')) text.after(filesOf(m.files));
  setReactions(li, m);
}

/** What a reply answers, above its text; a tap goes to it. */
export function quoteOf(q) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'quote';
  b.dataset.to = q.id;
  const who = document.createElement('span');
  who.className = 'q-who';
  const what = document.createElement('span');
  what.className = 'q-text';
  what.dir = 'auto';
  if (q.gone || q.missing) {
    what.textContent = q.gone ? 'deleted message' : 'a message no longer kept';
    b.classList.add('q-gone');
  } else {
    who.textContent = q.name;
    what.textContent = q.text.split('\n')[0] || (q.photo ? 'photo' : '');
  }
  if (q.photo && /^[0-9a-f]{32}$/.test(q.photo) && !q.gone) {
    const img = document.createElement('img');
    img.src = `/media/${q.photo}`;
    img.alt = '';
    img.loading = 'lazy';
    // Let go by the server to make room for newer files: the quote's words are enough.
    img.addEventListener('error', () => img.remove(), { once: true });
    b.append(img);
  }
  b.append(who, what);
  b.setAttribute('aria-label', q.gone || q.missing ? `Reply to a ${what.textContent}` : `Reply to ${q.name}: ${what.textContent}. Show it`);
  b.addEventListener('click', () => import('./changes.js').then((c) => c.reveal(q.id, b, q.gone || q.missing)));
  return b;
}

/** Reactions under a message: a chip per kind with its count, this device's own marked; a tap gives or takes back one, a long press says who. */
export function setReactions(li, m) {
  li.querySelector('.reactions')?.remove();
  if (m.deleted || !Array.isArray(m.reactions) || !m.reactions.length) return;
  const box = document.createElement('div');
  box.className = 'reactions';
  for (const r of m.reactions) {
    const mine = Boolean(tag.id) && r.by.some((b) => b.device === tag.id);
    const chip = document.createElement('button');
    chip.type = 'button';
    chip.textContent = `${r.emoji} ${r.by.length}`;
    chip.setAttribute('aria-pressed', String(mine));
    const names = r.by.map((b) => b.name).join(', ');
    chip.title = names;
    chip.setAttribute('aria-label', `${r.emoji} ${r.by.length}: ${names}`);
    chip.addEventListener('click', () => actions((a) => a.react(li, m.id, r.emoji, !mine)));
    chip.addEventListener('contextmenu', (e) => {
      e.preventDefault();
      note(li, `${r.emoji} ${names}`);
    });
    box.append(chip);
  }
  (li.querySelector('.files') || li.querySelector('.text')).after(box);
}

export const kib = (bytes) => (bytes < 1024 * 1024 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

/** A message's files: photos as pictures with their room kept before they load (several in a grid), the rest as links. */
function filesOf(files) {
  const box = document.createElement('div');
  box.className = 'files';
  if (files.filter((f) => limits.inline_types.includes(f.type)).length > 1) box.classList.add('grid');
  for (const f of files) {
    if (typeof f?.id !== 'string' || !/^[0-9a-f]{32}$/.test(f.id)) continue;
    const href = `/media/${f.id}`;
    const a = document.createElement('a');
    a.href = href;
    a.target = '_blank';
    a.rel = 'noopener';
    if (limits.inline_types.includes(f.type) && f.width > 0 && f.height > 0) {
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
      // Opened in the page's viewer (viewer.js), the link is for a middle click.
      a.className = 'photo';
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

export const dayOf = (time) => new Date(time).toDateString();

/** "Today", "Yesterday", or the date. */
export function dayLabel(time) {
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

/** A line of small print under a message, replacing any earlier one. */
export function note(li, text) {
  li.querySelector('.problem')?.remove();
  const p = document.createElement('div');
  p.className = 'problem';
  p.textContent = text;
  li.append(p);
}
