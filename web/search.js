// Finding a message: a box over the chat (behind the header's icon), answered by the
// server from all the history it keeps, newest first, case and accents aside. A
// result opens the chat at that message, loading older ones until it is there.
import { $ } from './env.js';
import { reveal, styled } from './changes.js';

/** Waits this long after the last key before asking, so typing is one request. */
const TYPING_MS = 250;

let panel = null;

export async function open() {
  await styled;
  if (panel) { panel.querySelector('input').focus(); return; }
  panel = document.createElement('div');
  panel.className = 'search';
  panel.setAttribute('role', 'dialog');
  panel.setAttribute('aria-label', 'Search messages');
  const bar = document.createElement('div');
  bar.className = 'search-bar';
  const input = document.createElement('input');
  input.type = 'search';
  input.placeholder = 'Search messages';
  input.setAttribute('aria-label', 'Search messages');
  input.enterKeyHint = 'search';
  const closeButton = document.createElement('button');
  closeButton.type = 'button';
  closeButton.textContent = 'Close';
  closeButton.addEventListener('click', close);
  bar.append(input, closeButton);
  const status = document.createElement('p');
  status.className = 'note';
  status.setAttribute('role', 'status');
  const results = document.createElement('ol');
  results.className = 'results';
  panel.append(bar, status, results);
  document.body.append(panel);
  input.focus();
  let timer = 0;
  let asked = 0;
  const ask = async () => {
    const q = input.value.trim();
    const mine = ++asked;
    results.replaceChildren();
    if (!q) { status.textContent = ''; return; }
    status.textContent = 'Searching…';
    let found;
    try {
      const res = await fetch(`/messages?q=${encodeURIComponent(q)}`, { headers: { Accept: 'application/json' } });
      found = res.ok ? await res.json() : null;
    } catch { found = null; }
    if (mine !== asked) return; // a newer search is under way
    if (!found) { status.textContent = 'The search did not work; try again.'; return; }
    show(found, 0);
  };
  /** Shows what a search found (after `before` ones already shown), and a way on when it stopped early. */
  const show = (found, before) => {
    const n = before + found.messages.length;
    status.textContent = n ? `${n}${found.more ? '+' : ''} found, newest first` : (found.more ? 'Nothing found yet' : 'Nothing found');
    for (const m of found.messages) results.append(result(m));
    if (!found.more) return;
    // A long history is searched in parts: the rest, older, on request.
    const li = document.createElement('li');
    const on = document.createElement('button');
    on.type = 'button';
    on.className = 'more';
    on.textContent = 'Search older messages';
    on.addEventListener('click', async () => {
      on.disabled = true;
      const mine = asked;
      try {
        const res = await fetch(`/messages?q=${encodeURIComponent(input.value.trim())}&before=${encodeURIComponent(found.next)}`, { headers: { Accept: 'application/json' } });
        if (!res.ok || mine !== asked) return;
        li.remove();
        show(await res.json(), n);
      } catch { on.disabled = false; }
    });
    li.append(on);
    results.append(li);
  };
  input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(ask, TYPING_MS); });
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { clearTimeout(timer); ask(); } });
  panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
}

function result(m) {
  const li = document.createElement('li');
  const b = document.createElement('button');
  b.type = 'button';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = `${m.name} · ${new Date(m.time).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}`;
  const text = document.createElement('span');
  text.className = 'text';
  text.dir = 'auto';
  text.textContent = m.text || (m.files || []).map((f) => f.name).join(', ');
  b.append(who, text);
  b.addEventListener('click', async () => {
    b.disabled = true;
    b.append(' …');
    const found = await reveal(m.id);
    if (found) close();
    else { b.disabled = false; text.textContent = 'That message is no longer kept.'; }
  });
  li.append(b);
  return li;
}

function close() {
  panel?.remove();
  panel = null;
  $('search-open').focus();
}
