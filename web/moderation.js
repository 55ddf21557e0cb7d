// The moderator's menu on each message (its button is there only with the
// moderator's cookie: render.js; this loads at its first use): which device sent
// it, delete it, or mute whoever sent it (by address and device). Each action is
// checked by the server.
import { emit, limits, refusal } from './env.js';
import { note } from './render.js';
import { shown } from './timeline.js';

addEventListener('keydown', (e) => { if (e.key === 'Escape') closeAll(); });
addEventListener('pointerdown', (e) => { if (!e.target.closest('.mod-actions, .mod-toggle')) closeAll(); });

function closeAll() {
  for (const menu of document.querySelectorAll('.mod-actions:not([hidden])')) {
    menu.hidden = true;
    menu.parentElement.querySelector('.mod-toggle').setAttribute('aria-expanded', 'false');
  }
}

/** Opens (or closes) the moderator's menu of message `li`, made at its first use. */
export function toggle(li) {
  const menu = li.querySelector('.mod-actions') || make(li);
  if (!menu) return;
  menu.hidden = !menu.hidden;
  li.querySelector('.mod-toggle').setAttribute('aria-expanded', String(!menu.hidden));
}

function make(li) {
  const m = shown.get(li.dataset.id)?.m;
  if (!m) return null;
  const id = m.id;
  const button = li.querySelector('.mod-toggle');
  const menu = document.createElement('div');
  menu.className = 'mod-actions';
  menu.hidden = true;
  const action = (label, run) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', async () => {
      menu.hidden = true;
      button.setAttribute('aria-expanded', 'false');
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
  li.append(menu);
  return menu;
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
