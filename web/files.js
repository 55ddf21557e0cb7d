// Photos and files. A photo is made smaller on the phone before it travels: at most
// MAX_SIDE pixels on its longest side, turned upright by its EXIF orientation and
// encoded again as JPEG, which leaves its metadata (the GPS position above all)
// behind. Other files go as they are, within the server's limit, told at the chip.
// Files waiting to be sent, and those chosen for the next message, are kept in
// IndexedDB (which plain http has too), so a reload or a closed tab loses none.
// Loaded when first needed (composer.js): files chosen, a draft or an outbox item
// with files, a retry.
import { $, limits, store } from './env.js';
import { kib } from './render.js';

const MAX_SIDE = 1600;
const JPEG_QUALITY = 0.82;
/** cid -> [{ name, type, blob }] of the outbox's messages with files, in this tab. */
export const attachments = new Map();
/** Files chosen for the next message. */
let chosen = [];
export const DRAFT_FLAG = 'lanchat.draft-files';

export const uploads = (() => {
  let db = null;
  const open = () => (db ||= new Promise((resolve, reject) => {
    const req = indexedDB.open('lanchat', 1);
    req.onupgradeneeded = () => req.result.createObjectStore('uploads');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  }));
  // Done once the transaction is: a page reloaded right after finds what it wrote.
  const run = async (mode, act) => {
    const tx = (await open()).transaction('uploads', mode);
    return new Promise((resolve, reject) => {
      const req = act(tx.objectStore('uploads'));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  };
  return {
    put: (cid, files) => run('readwrite', (s) => s.put(files, cid)).catch(() => {}),
    get: (cid) => run('readonly', (s) => s.get(cid)).catch(() => undefined),
    del: (cid) => run('readwrite', (s) => s.delete(cid)).catch(() => {}),
  };
})();

export function forgetFiles(cid) {
  attachments.delete(cid);
  uploads.del(cid);
}

/** A photo made small and upright, without its metadata; any other file as it is. */
async function prepare(file) {
  if (!/^image\/(jpeg|png|webp|avif|bmp|heic|heif)$/i.test(file.type)) {
    return { name: file.name || 'file', type: file.type, blob: file };
  }
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
  if (!blob) throw new Error('not encoded');
  const base = (file.name || 'photo').replace(/\.[^.]*$/, '');
  return { name: `${base}.jpg`, type: 'image/jpeg', blob };
}

/** Posts a message with files, showing the upload's progress on its bubble. */
export function upload(fields, files, li, signal) {
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [k, v] of Object.entries(fields)) data.append(k, v);
    for (const f of files) data.append('file', f.blob, f.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/message');
    xhr.setRequestHeader('Accept', 'application/json');
    let bar = li.querySelector('progress');
    if (!bar) {
      bar = document.createElement('progress');
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute('aria-label', 'Upload');
      li.append(bar);
    }
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      bar.remove();
      resolve(new Response(xhr.responseText, { status: xhr.status }));
    };
    xhr.onerror = () => reject(new Error('network'));
    xhr.onabort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', () => xhr.abort());
    xhr.send(data);
  });
}

/** The chips of the files chosen for the next message, kept as a draft across a reload. */
async function show() {
  const ready = chosen.filter((f) => !f.failed);
  // The flag tells a page that opens whether it needs this module for a draft. The
  // chips show once the draft is kept: what shows survives a reload.
  if (ready.length) { store.set(DRAFT_FLAG, '1'); await uploads.put('draft', ready); } else { store.remove(DRAFT_FLAG); uploads.del('draft'); }
  const box = $('attached');
  box.replaceChildren(...chosen.map((f, i) => {
    const chip = document.createElement('span');
    chip.className = 'chip';
    const label = document.createElement('span');
    label.textContent = f.name;
    const drop = document.createElement('button');
    drop.type = 'button';
    drop.textContent = '✕';
    drop.setAttribute('aria-label', `Remove ${f.name}`);
    drop.addEventListener('click', () => { chosen.splice(i, 1); show(); });
    chip.append(label, drop);
    return chip;
  }));
  box.hidden = chosen.length === 0;
}

/** Files kept as a draft by a page before this one become chips again. */
export async function restoreDraft() {
  const kept = await uploads.get('draft');
  if (Array.isArray(kept) && kept.length && !chosen.length) { chosen = kept; show(); }
}

/** The paperclip's files become chips, photos made small on the way. */
export async function choose(picker) {
  const files = [...picker.files];
  picker.value = '';
  for (const file of files) {
    let ready;
    try {
      ready = await prepare(file);
    } catch {
      // Not sent as it is: its metadata (a GPS position) would go with it.
      ready = { name: `${file.name}: this photo cannot be read here`, failed: true };
    }
    if (!ready.failed && ready.blob.size > limits.max_upload) {
      // Told now, at the chip, not after an upload the server must refuse.
      ready = { name: `${ready.name}: too large (the most is ${kib(limits.max_upload)})`, failed: true };
    }
    if (ready.failed) setTimeout(() => { chosen = chosen.filter((c) => c !== ready); show(); }, 5000);
    chosen.push(ready);
    await show();
  }
}

/** Whether a file is chosen that can go. */
export const hasChosen = () => chosen.some((f) => !f.failed);

/** What is attached goes with the text, and the chips are cleared. */
export function takeChosen() {
  const files = chosen.filter((f) => !f.failed);
  chosen = [];
  show();
  return files;
}
