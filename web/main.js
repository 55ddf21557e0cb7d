// lanchat's page, as modules: env (shared helpers, limits), render (a bubble),
// timeline (the list), notice (what is new, and where the reader was), moderation
// (the host's menu), stream (the events, shared by tabs), outbox (sending), files
// (photos, and the viewer), composer (the box), portal (the hotspot's sheet). Without JavaScript the form still posts, the page reloads,
// and a frame shows the newest messages (/recent).
//
// The newest messages come first: the page asks for them while it is parsed
// (preloaded, as are the three modules that show them), and everything else loads
// after they are on screen.
import { $, store } from './env.js';
import { loadHistory } from './timeline.js';

document.documentElement.classList.add('js');
$('name').value = store.get('lanchat.name') || '';
await loadHistory();
const [notice, moderation, stream, outbox, files, composer, portal] = await Promise.all(
  ['notice', 'moderation', 'stream', 'outbox', 'files', 'composer', 'portal']
    .map((name) => import(`./${name}.js`)),
);
notice.welcome();
notice.initPrefs();
moderation.initModeration();
files.initPicker();
composer.initComposer();
portal.initPortal();
stream.elect();
// What was typed and not sent before this page was closed or reloaded: on its way.
for (const item of outbox.readOutbox()) outbox.pendingBubble(item);
outbox.sendOutbox();
