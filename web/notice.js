// Nothing new goes unnoticed. While the page is hidden, new messages from others
// count in the title and as a dot on the tab's icon, cleared when it is seen again;
// with the chat muted only those that name this person (@name) count. A sound and a
// vibration, when turned on; a system notification where the browser has them (not
// on plain http from a LAN address: that is not a secure context).
import { $, parse, store } from './env.js';

const PREFS_KEY = 'lanchat.prefs';
const prefs = { muted: false, sound: false, notify: false, ...(parse(store.get(PREFS_KEY)) || {}) };
const savePrefs = () => store.set(PREFS_KEY, JSON.stringify(prefs));
const TITLE = document.title;
const iconLinks = [...document.querySelectorAll('link[rel~="icon"]')];
const iconHrefs = iconLinks.map((l) => l.href);
let unseen = 0;
/** Counting starts once the first replay is in: what a page is shown on opening is not new. */
export const counting = { on: false };

/** Whether a text names this person: "@name", whole, in any case. */
export function namesMe(text) {
  const name = $('name').value.trim();
  if (!name) return false;
  const at = `@${name}`.toLocaleLowerCase();
  const lower = text.toLocaleLowerCase();
  for (let i = lower.indexOf(at); i >= 0; i = lower.indexOf(at, i + 1)) {
    const next = lower[i + at.length];
    if (next === undefined || !/[\p{L}\p{N}_]/u.test(next)) return true;
  }
  return false;
}

/** A message from someone else arrived. */
export function notice(m, mention) {
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
  if (window.Notification && window.isSecureContext) {
    notify.closest('label').hidden = false;
    notify.addEventListener('change', async () => {
      prefs.notify = notify.checked;
      savePrefs();
      if (notify.checked && Notification.permission === 'default') await Notification.requestPermission();
    });
  }
}
