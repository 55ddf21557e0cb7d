// The moderator's menu on each message (only with the moderator's cookie): which
// device sent it, delete it, or mute whoever sent it (by address and device). Each
// action is checked by the server.
import { emit, isHost, limits, on, refusal } from './env.js';
import { note } from './render.js';
import { shown } from './timeline.js';

/** The menus on every message, now and as they come, for the host. */
export function initModeration() {
  if (!isHost) return;
  for (const { m, li } of shown.values()) moderation(li, m);
  on('shown', (m, li) => moderation(li, m));
  addEventListener('keydown', (e) => { if (e.key === 'Escape') closeAll(); });
  addEventListener('pointerdown', (e) => { if (!e.target.closest('.mod-actions, .mod-toggle')) closeAll(); });
}

function closeAll() {
  for (const menu of document.querySelectorAll('.mod-actions:not([hidden])')) {
    menu.hidden = true;
    menu.parentElement.querySelector('.mod-toggle').setAttribute('aria-expanded', 'false');
  }
}

/** Adds the moderator's menu to a message. */
function moderation(li, m) {
  const id = m.id;
  const toggle = document.createElement('button');
  toggle.type = 'button';
  toggle.className = 'mod-toggle';
  toggle.textContent = '⚑';
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
  const minutes = limits.mute_minutes;
  if (m.device) {
    const device = document.createElement('span');
    device.textContent = `device #${m.device}`;
    menu.append(device);
  }
  menu.append(
    action('Delete', async () => {
      const res = await moderate(path, { method: 'DELETE' });
      // The deletion event removes it everywhere, here too; no need to wait for it.
      if (res === true) emit('deleted', id);
      return res === true ? '' : res;
    }),
    action(`Mute sender ${minutes} min`, async () => {
      const res = await moderate(`${path}/mute`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ minutes: String(minutes) }),
      });
      return res === true ? `Sender muted for ${minutes} minutes` : res;
    }),
  );
  toggle.addEventListener('click', () => {
    menu.hidden = !menu.hidden;
    toggle.setAttribute('aria-expanded', String(!menu.hidden));
  });
  li.querySelector('.meta').append(toggle);
  li.append(menu);
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
