// lanchat's page, as modules: env (shared helpers, limits), render (a bubble),
// timeline (the list), notice (what is new, and where the reader was), moderation
// (the host's menu, at its first use), stream (the events, shared by tabs), outbox (sending), files
// (photos, loaded when first needed), viewer (a tapped photo), actions (react, reply, edit, delete: a
// message's menu), search (finding a message), composer (the box), portal (the
// hotspot's sheet). Without JavaScript the form still posts, the page reloads, and a frame
// shows the newest messages (/recent).
//
// The newest messages come first: the page asks for them while it is parsed
// (preloaded, as are the three modules that show them), and everything else loads
// after they are on screen.
import { $, loadFiles, store } from './env.js';
import { loadHistory } from './timeline.js';

document.documentElement.classList.add('js');
$('name').value = store.get('lanchat.name') || '';
await loadHistory();
// The hotspot's sheet is fetched only by the pages that show it.
const wanted = ['notice', 'stream', 'outbox', 'composer'];
if (new URLSearchParams(location.search).has('portal')) wanted.push('portal');
const m = Object.fromEntries(await Promise.all(wanted.map(async (name) => [name, await import(`./${name}.js`)])));
m.notice.welcome();
m.notice.initPrefs();
m.composer.initComposer();
m.portal?.initPortal();
m.stream.elect();
// Searching loads its code when it is first asked for.
const search = $('search-open');
search.hidden = false;
search.addEventListener('click', () => import('./search.js').then((s) => s.open()));
// What was typed and not sent before this page was closed or reloaded: on its way.
for (const item of m.outbox.readOutbox()) m.outbox.pendingBubble(item);
m.outbox.sendOutbox();
// Fetched now that the messages are on screen, not on first use: a photo chosen, or
// a reaction that comes, while the Wi-Fi is gone must not depend on a fetch.
loadFiles();
import('./changes.js');
