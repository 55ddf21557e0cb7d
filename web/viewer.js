// The photo viewer: a dialog with the neighbouring photos a swipe, an arrow key or a
// button away, a download, and Escape or Close back to where the reader was (focus
// returns to the photo). Fetched the first time a photo is tapped (files.js).
import { list } from './timeline.js';

let dialog = null;
let img = null;
let save = null;
let opener = null;
let at = 0;
let startX = null;

const photos = () => [...list.querySelectorAll('a.photo')];

function view(i) {
  const all = photos();
  if (!all.length) return;
  at = (i + all.length) % all.length;
  const a = all[at];
  img.src = a.href;
  img.alt = a.querySelector('img')?.alt || 'photo';
  save.href = a.href;
  save.download = img.alt;
}

function control(tag, label, text, act) {
  const el = document.createElement(tag);
  el.textContent = text;
  el.setAttribute('aria-label', label);
  if (tag === 'button') el.type = 'button';
  if (act) el.addEventListener('click', act);
  dialog.append(el);
  return el;
}

function make() {
  dialog = document.createElement('dialog');
  dialog.className = 'viewer';
  dialog.setAttribute('aria-label', 'Photo');
  img = document.createElement('img');
  dialog.append(img);
  control('button', 'Previous photo', '‹', () => view(at - 1));
  control('button', 'Next photo', '›', () => view(at + 1));
  save = control('a', 'Download', 'Download');
  control('button', 'Close', '✕', () => dialog.close());
  dialog.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') view(at - 1);
    if (e.key === 'ArrowRight') view(at + 1);
  });
  dialog.addEventListener('pointerdown', (e) => { startX = e.clientX; });
  dialog.addEventListener('pointerup', (e) => {
    const moved = startX === null ? 0 : e.clientX - startX;
    if (Math.abs(moved) > 50) view(at + (moved < 0 ? 1 : -1));
    startX = null;
  });
  dialog.addEventListener('close', () => opener?.focus());
  document.body.append(dialog);
}

/** Opens the viewer at the photo link `a`. */
export function open(a) {
  if (!dialog) make();
  opener = a;
  view(photos().indexOf(a));
  dialog.showModal();
}
