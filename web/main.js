// lanchat's page, as modules: env (shared helpers, limits), render (a bubble),
// timeline (the list), notice (what is new), moderation (the host's menu), stream
// (the events, shared by tabs), outbox (sending), files (photos), composer (the box),
// portal (the hotspot's sheet). Without JavaScript the form still posts, the page
// reloads, and a frame shows the newest messages (/recent).
import { initPrefs } from './notice.js';
import { elect } from './stream.js';
import { pendingBubble, readOutbox, sendOutbox } from './outbox.js';
import { initPicker } from './files.js';
import { initComposer } from './composer.js';
import { initPortal } from './portal.js';

document.documentElement.classList.add('js');
initPrefs();
initPicker();
initComposer();
initPortal();
elect();
// What was typed and not sent before this page was closed or reloaded: on its way.
for (const item of readOutbox()) pendingBubble(item);
sendOutbox();
