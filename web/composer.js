// The message box and the name: limits counted as the server counts them, Enter as
// a phone's keyboard or a laptop's expects, the message being answered or edited,
// and the box kept above the on-screen keyboard.
import { $, files, limits, loadFiles, on, parse, store } from './env.js';
import { actions } from './render.js';
import { queue } from './outbox.js';
import { nearBottom, scrollToEnd } from './timeline.js';

const form = $('composer');
const input = $('message');
const nameInput = $('name');
const counter = $('counter');
const NAME_KEY = 'lanchat.name';
const DRAFT_KEY = 'lanchat.draft';
/** What the box is doing beside writing: answering a message, or editing one. */
const CONTEXT_KEY = 'lanchat.context';
let context = null;
/** Set once the writer chose to send without a name. */
const ANON_KEY = 'lanchat.anonymous';
/** The counter shows from this many characters left, so a long message sees it coming. */
const COUNT_FROM = 200;

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight}px`;
}

// The limits as the server counts them: in characters (Unicode code points, a line
// break as one). The markup's maxlength, left for pages without JavaScript, counts
// UTF-16 units and would stop a text of emoji at half its length.
const characters = (text) => [...text.replace(/\r\n?/g, '\n')].length;
function withinLimits() {
  let fine = true;
  for (const [field, max, what] of [[input, limits.message_chars, 'message'], [nameInput, limits.name_chars, 'name']]) {
    const count = characters(field === nameInput ? field.value.trim() : field.value);
    const over = count - max;
    field.setCustomValidity(over > 0 ? `The ${what} is ${over} characters over the limit of ${max}.` : '');
    fine &&= over <= 0;
    if (field === input) {
      counter.hidden = max - count > COUNT_FROM;
      counter.textContent = over > 0 ? `${over} over the limit of ${max}` : `${count} / ${max}`;
      counter.classList.toggle('over', over > 0);
    }
  }
  return fine;
}

/** Shows (or with `null` drops) what the box answers or edits; kept across a reload. */
function setContext(c) {
  context = c;
  if (c) store.set(CONTEXT_KEY, JSON.stringify(c));
  else store.remove(CONTEXT_KEY);
  const bar = $('context');
  bar.hidden = !c;
  if (!c) return;
  const text = $('context-text');
  if (c.edit) text.textContent = 'Editing your message';
  else text.textContent = `Reply to ${c.reply.name}: ${c.reply.text.split('\n')[0] || 'photo'}`;
  // The photo it answers, small, as the quote will show it.
  bar.querySelector('img')?.remove();
  if (c.reply?.photo) text.before(Object.assign(document.createElement('img'), { src: `/media/${c.reply.photo}`, alt: '' }));
  input.focus();
}

/** Answers message `m`: the next message sent quotes it. */
export function replyTo(m) {
  const photo = (m.files || []).find((f) => limits.inline_types.includes(f.type) && f.width)?.id;
  setContext({ reply: { id: m.id, name: m.name, text: [...m.text].slice(0, 120).join(''), photo } });
}

/** Edits this device's message `m`: its text goes into the box, and Send saves it. */
export function edit(m) {
  setContext({ edit: m.id, was: input.value });
  input.value = m.text;
  autosize();
}

function dropContext() {
  if (context?.edit) input.value = context.was || '';
  autosize();
  setContext(null);
}

export function initComposer() {
  const picker = $('attach');
  picker.addEventListener('change', () => loadFiles().then((f) => f.choose(picker)));
  if (store.get('lanchat.draft-files')) loadFiles().then((f) => f.restoreDraft());
  const kept = parse(store.get(CONTEXT_KEY));
  if (kept) setContext(kept);
  $('context-close').addEventListener('click', dropContext);
  input.addEventListener('keydown', (e) => { if (e.key === 'Escape' && context) dropContext(); });
  nameInput.value = store.get(NAME_KEY) || '';
  nameInput.addEventListener('input', () => { store.set(NAME_KEY, nameInput.value.trim()); $('ask-name').hidden = true; });
  // What was being typed survives a reload.
  input.value ||= store.get(DRAFT_KEY) || '';
  autosize();
  input.addEventListener('input', () => store.set(DRAFT_KEY, input.value));
  const ask = $('ask-name');
  $('anonymous').addEventListener('click', () => { store.set(ANON_KEY, '1'); ask.hidden = true; form.requestSubmit(); });
  for (const field of [input, nameInput]) {
    field.removeAttribute('maxlength');
    field.addEventListener('input', withinLimits);
  }
  on('limits', withinLimits);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() && !files.module?.hasChosen()) return;
    // What is over a limit stays in the box, with the reason, to be shortened.
    if (!withinLimits()) {
      form.reportValidity();
      return;
    }
    // A first message without a name asks for one, once, in place.
    if (!nameInput.value.trim() && !store.get(ANON_KEY)) {
      ask.hidden = false;
      nameInput.focus();
      return;
    }
    if (context?.edit) {
      const { edit: id, was } = context;
      if (!text.trim()) return;
      input.value = was || '';
      store.set(DRAFT_KEY, input.value);
      setContext(null);
      autosize();
      // Not saved (no network, too late): the new text comes back to the box, not lost.
      actions((a) => a.edit(id, text)).catch(() => false).then((saved) => {
        if (saved) return;
        setContext({ edit: id, was: input.value });
        input.value = text;
        autosize();
      });
      return;
    }
    const chosen = files.module ? files.module.takeChosen() : [];
    input.value = '';
    store.remove(DRAFT_KEY);
    autosize();
    queue(text.trim() ? text : '', nameInput.value.trim(), chosen, Date.now(), context?.reply);
    setContext(null);
    input.focus();
  });
  // On a phone's keyboard Enter is the only way to break a line, and Send is a thumb
  // away: Enter breaks the line there. With a hardware keyboard Enter sends and
  // Shift+Enter breaks the line.
  const touchOnly = matchMedia('(hover: none) and (pointer: coarse)').matches;
  if (touchOnly) input.setAttribute('enterkeyhint', 'enter');
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !touchOnly) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener('input', autosize);
  // Keep the input bar above the on-screen keyboard where the browser does not
  // resize the page for it (iOS Safari).
  if (window.visualViewport) {
    window.visualViewport.addEventListener('resize', () => {
      const follow = nearBottom();
      document.body.style.height = `${window.visualViewport.height}px`;
      if (follow) scrollToEnd();
    });
  }
}
