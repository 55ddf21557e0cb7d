// What can be done with a message once it is sent, loaded at the first use: react
// (one of each kind per device; a second tap takes it back), reply, and for this
// device's own message edit (for 15 minutes) or delete. The server checks each:
// another device's message cannot be changed.
import { device, learnTag, limits, refusal, tag } from './env.js';
import { note } from './render.js';
import { own, shown } from './timeline.js';
import { reveal, styled, update } from './changes.js';
import { edit as editInBox, replyTo } from './composer.js';


const nameNow = () => document.getElementById('name').value.trim();

/** A change to message `id`; the message as it now stands, or the reason it was refused. */
async function change(id, what, fields) {
  try {
    const res = await fetch(`/message/${encodeURIComponent(id)}/${what}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ ...fields, device }),
    });
    if (res.ok) {
      const body = await res.json();
      learnTag(body.device);
      update(body.message);
      return { ok: true };
    }
    const why = await refusal(res);
    return { ok: false, reason: why.message || `not done (${res.status})` };
  } catch {
    return { ok: false, reason: 'the server cannot be reached; try again' };
  }
}

export async function react(li, id, emoji, on) {
  const done = await change(id, 'react', { emoji, on: on ? '1' : '0', name: nameNow() });
  if (!done.ok) note(li, done.reason);
}

/** Saves a new text for this device's message `id`; whether it was saved. */
export async function edit(id, text) {
  const done = await change(id, 'edit', { message: text });
  if (!done.ok) {
    const li = shown.get(id)?.li;
    if (li) note(li, `Not edited: ${done.reason}`);
  }
  return done.ok;
}

let openMenu = null;
function close() {
  if (!openMenu) return;
  const { box, toggle } = openMenu;
  openMenu = null;
  box.remove();
  toggle?.setAttribute('aria-expanded', 'false');
  toggle?.focus({ preventScroll: true });
}
addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
addEventListener('pointerdown', (e) => { if (openMenu && !e.target.closest('.actions')) close(); });

/** The menu of message `li`: reactions in a row, then Reply, Edit and Delete. */
export async function menu(li) {
  await styled;
  const entry = shown.get(li.dataset.id);
  const wasOpen = openMenu?.li === li;
  close();
  if (!entry || wasOpen) return;
  const { m } = entry;
  const toggle = li.querySelector('.act');
  const box = document.createElement('div');
  box.className = 'actions';
  box.setAttribute('role', 'menu');
  box.setAttribute('aria-label', 'Message actions');
  const item = (label, run, className = '') => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = className;
    b.setAttribute('role', 'menuitem');
    b.textContent = label;
    b.addEventListener('click', run);
    return b;
  };
  const mine = own.has(m.id) || (Boolean(tag.id) && m.device === tag.id);
  if (!m.deleted) {
    const row = document.createElement('div');
    row.className = 'react-row';
    for (const emoji of limits.reactions) {
      const given = isMine(m, emoji);
      const b = item(emoji, () => { close(); react(li, m.id, emoji, !given); });
      b.setAttribute('aria-label', `React ${emoji}`);
      b.setAttribute('aria-pressed', String(given));
      row.append(b);
    }
    box.append(row);
    box.append(item('Reply', () => { close(); replyTo(m); }));
    // The server's window, by this phone's clock: the server has the last word.
    if (mine && Date.now() - m.time < limits.edit_minutes * 60000) box.append(item('Edit', () => { close(); editInBox(m); }));
    if (mine) {
      const del = item('Delete', async () => {
        if (!del.dataset.sure) {
          // One more tap: deleting is for everyone, and cannot be undone.
          del.dataset.sure = '1';
          del.textContent = 'Delete for everyone?';
          del.classList.add('danger');
          return;
        }
        close();
        const done = await change(m.id, 'delete', {});
        if (!done.ok) note(li, `Not deleted: ${done.reason}`);
      });
      box.append(del);
    }
  }
  if (m.reply) box.append(item('Show the message it answers', () => { close(); reveal(m.reply.id, li); }));
  li.append(box);
  toggle?.setAttribute('aria-expanded', 'true');
  openMenu = { li, box, toggle };
  box.querySelector('button')?.focus({ preventScroll: true });
  // Arrow keys move through the menu, as in any menu.
  box.addEventListener('keydown', (e) => {
    const items = [...box.querySelectorAll('button')];
    const at = items.indexOf(document.activeElement);
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    e.preventDefault();
    items[(at + step + items.length) % items.length].focus();
  });
}

/** Whether this device gave reaction `emoji` to `m`. */
const isMine = (m, emoji) => Boolean(tag.id) && Boolean(m.reactions?.find((r) => r.emoji === emoji)?.by.some((b) => b.device === tag.id));
