// Changes to messages already on screen, loaded with the first one: a reaction set
// or cleared (never counted, so the same event twice changes nothing), a new text,
// a message taken back; replies that quote a changed message follow it. Also going
// to a message that is not on screen (a quote's original, a search result).
import { note, quoteOf, setReactions, setText } from './render.js';
import { loadOlderPage, older, shown } from './timeline.js';

/** The style of the menu, the search and the mark on a message gone to, with them. */
const link = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/more.css' });
export const styled = new Promise((done) => { link.onload = done; link.onerror = done; });
document.head.append(link);

/** A change event's data `d` (`kind`: react, edit or delete), applied to what is shown. Neither counts as new nor is announced. */
export function apply(kind, d) {
  const entry = shown.get(d.id);
  if (kind === 'delete') {
    if (entry && d.own) update({ ...entry.m, deleted: true, text: '', files: [], reactions: [], reply: null });
    requote(d.id, null);
    return;
  }
  if (!entry || entry.m.deleted) return;
  const { m, li } = entry;
  if (kind === 'react') {
    const groups = (m.reactions ||= []);
    let group = groups.find((g) => g.emoji === d.emoji);
    const others = group ? group.by.filter((b) => b.device !== d.device) : [];
    if (d.on) {
      if (!group) groups.push(group = { emoji: d.emoji, by: [] });
      if (others.length === group.by.length) group.by.push({ device: d.device, name: d.name });
    } else if (group) {
      group.by = others;
      if (!others.length) groups.splice(groups.indexOf(group), 1);
    }
    setReactions(li, m);
  } else if (kind === 'edit') {
    update({ ...m, text: d.text, edited: d.edited });
  }
}

/** A message as it now stands (from an event, or the server's answer to a change). */
export function update(m) {
  const entry = m && shown.get(m.id);
  if (!entry) return;
  entry.m = m;
  setText(entry.li, m);
  if (!m.deleted) requote(m.id, m);
}

/** The replies on screen to message `id` quote it as it now is (`null`: deleted). */
function requote(id, m) {
  for (const { m: reply, li } of shown.values()) {
    if (reply.reply?.id !== id) continue;
    reply.reply = m ? { ...reply.reply, text: [...m.text].slice(0, 120).join('') } : { id, gone: true };
    li.querySelector('.quote')?.replaceWith(quoteOf(reply.reply));
  }
}

/**
 * Shows the message `id`: loading older pages until it is there (a quote of one far
 * up, a search result), then scrolled to and marked for a moment. When it is not
 * kept any more (or, `gone`, was deleted), says so next to `from`.
 */
export async function reveal(id, from, gone = false) {
  // A quote that says its message is gone: only what is on screen is looked at.
  while (!shown.has(id) && !gone) {
    // The list's own loading (a scroll) finishes first: one page at a time.
    while (older.loading) await new Promise((r) => requestAnimationFrame(r));
    older.loading = true;
    let more = false;
    try { more = await loadOlderPage(200); } catch { /* said below */ } finally { older.loading = false; }
    if (!more) break;
  }
  const entry = shown.get(id);
  if (!entry) {
    if (from) note(from.closest('.msg') || from, gone ? 'That message was deleted.' : 'That message is no longer kept.');
    return false;
  }
  entry.li.scrollIntoView({ block: 'center' });
  entry.li.classList.remove('found');
  void entry.li.offsetWidth; // the mark's animation starts again
  entry.li.classList.add('found');
  return true;
}
