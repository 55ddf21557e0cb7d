// Nothing new goes unnoticed, and a reader who comes back finds where they were.
// The newest message seen on this device is remembered; when the page opens again or
// comes back into view, a divider sits above the first message after it and the
// view opens there; a pill counts those still below and jumps to them.
// While the page is hidden, new messages from others
// count in the title and as a dot on the tab's icon, cleared when it is seen again;
// with the chat muted only those that name this person (@name) count. A sound and a
// vibration, when turned on; a system notification where the browser has them (not
// on plain http from a LAN address: that is not a secure context).
import { $, on, parse, store } from './env.js';
import { list, nearBottom, scroller, scrollToEnd, shown } from './timeline.js';

const PREFS_KEY = 'lanchat.prefs';
const prefs = { muted: false, sound: false, notify: false, ...(parse(store.get(PREFS_KEY)) || {}) };
const savePrefs = () => store.set(PREFS_KEY, JSON.stringify(prefs));
const TITLE = document.title;
const iconLinks = [...document.querySelectorAll('link[rel~="icon"]')];
const iconHrefs = iconLinks.map((l) => l.href);
let unseen = 0;
/** Counting starts once the first replay is in: what a page is shown on opening is not new. */
export const counting = { on: false };

/** Whether a text names this person: "@name", whole, in any case (not "x@Ana.com"). */
export function namesMe(text) {
  const name = $('name').value.trim();
  if (!name) return false;
  const at = `@${name}`.toLocaleLowerCase();
  const lower = text.toLocaleLowerCase();
  for (let i = lower.indexOf(at); i >= 0; i = lower.indexOf(at, i + 1)) {
    if (!/[\p{L}\p{N}_.]/u.test(lower[i - 1] || ' ') && !/[\p{L}\p{N}_]/u.test(lower[i + at.length] || ' ')) return true;
  }
  return false;
}

/** Marks a message that names this person; counts it when it came while away. */
function mark(m, li, live) {
  const own = li.classList.contains('own');
  const mention = !own && namesMe(m.text);
  li.classList.toggle('mention', mention);
  if (live) notice(m, mention);
}

/** A message from someone else arrived. */
function notice(m, mention) {
  if (!counting.on || (prefs.muted && !mention)) return;
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

/** The bell menu: its switches, kept in the browser. */
export function initPrefs() {
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
  for (const { m, li } of shown.values()) mark(m, li, false);
  on('shown', mark);
  closes($('prefs'));
  if (!window.isSecureContext) {
    // Said, not hidden: over plain http the browser offers no notifications.
    $('notify-note').hidden = false;
  } else if (window.Notification) {
    notify.closest('label').hidden = false;
    notify.addEventListener('change', async () => {
      prefs.notify = notify.checked;
      savePrefs();
      if (notify.checked && Notification.permission === 'default') await Notification.requestPermission();
    });
  }
}

/** A menu (a `<details>`) closes on Escape and on a tap anywhere else. */
export function closes(menu) {
  addEventListener('keydown', (e) => { if (e.key === 'Escape' && menu.open) { menu.open = false; menu.querySelector('summary')?.focus(); } });
  addEventListener('pointerdown', (e) => { if (menu.open && !menu.contains(e.target)) menu.open = false; });
}

// ---- where was I ------------------------------------------------------------------
const SEEN_KEY = 'lanchat.seen';
const hint = $('new-hint');
let seen = store.get(SEEN_KEY) || '';
let divider = null;

/** Whether id `a` comes after id `b` in the sequence (ids of another run: no). */
function after(a, b) {
  const [ea, na] = a.split('-').map(Number);
  const [eb, nb] = b.split('-').map(Number);
  return ea === eb && na > nb;
}

/** The bubbles from others after the newest one seen. */
const unread = () => [...list.querySelectorAll('.msg[data-id]:not(.own)')].filter((li) => seen && after(li.dataset.id, seen));

const top = (el) => el.getBoundingClientRect().top - scroller.getBoundingClientRect().top;

/** What is on screen of a visible page counts as seen. */
function look() {
  if (document.hidden) return;
  const all = list.querySelectorAll('.msg[data-id]');
  for (let i = all.length - 1; i >= 0; i--) {
    if (top(all[i]) < scroller.clientHeight) {
      const id = all[i].dataset.id;
      if (!seen || after(id, seen)) store.set(SEEN_KEY, seen = id);
      break;
    }
  }
  count();
}

/** The pill: how many unseen are below the view, and the way to them. */
function count() {
  const below = unread().filter((li) => top(li) >= scroller.clientHeight).length;
  hint.hidden = !below || nearBottom();
  hint.textContent = `${below} new message${below === 1 ? '' : 's'} ↓`;
}

/** Back to the chat: the divider above the first unseen, and the view there. */
export function welcome() {
  divider?.remove();
  divider = null;
  const first = unread();
  if (!first.length) return look();
  divider = document.createElement('li');
  divider.className = 'unread';
  divider.setAttribute('role', 'separator');
  divider.textContent = `${first.length} new message${first.length === 1 ? '' : 's'}`;
  first[0].before(divider);
  // The first one back shows its name, whoever wrote the one above.
  first[0].classList.remove('cont');
  scroller.scrollTop += top(divider) - 8;
  look();
}

hint.addEventListener('click', () => {
  if (divider && top(divider) > scroller.clientHeight) scroller.scrollTop += top(divider) - 8;
  else scrollToEnd();
});
scroller.addEventListener('scroll', look, { passive: true });
document.addEventListener('visibilitychange', () => { if (!document.hidden) welcome(); });
on('shown', (m, li, live) => { if (live) look(); });
