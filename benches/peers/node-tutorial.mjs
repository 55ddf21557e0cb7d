// The Node.js tutorial server the project grew from (../../README.md), as a peer for
// the load generator: its own broadcast (one res.write per client per message), plus
// only what the load generator needs to count: an `id:` per message, a 201 with the
// id as JSON, and the count of streams sent to each new one. Not a server to use: no limits, no validation.
//
//   node benches/peers/node-tutorial.mjs --listen 127.0.0.1:0
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const listen = args[args.indexOf('--listen') + 1] || '127.0.0.1:3000';
const [host, port] = listen.split(':');
const epoch = Date.now();
let n = 0;
const clients = new Set();

function send(data) {
  for (const res of clients) res.write(data);
}

const server = createServer((req, res) => {
  if (req.url === '/events') {
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    res.flushHeaders();
    clients.add(res);
    // To the new client only: the load generator waits for a count that reaches N.
    res.write(`event: presence\ndata: {"online":${clients.size}}\n\n`);
    req.on('close', () => clients.delete(res));
  } else if (req.url === '/message') {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const text = new URLSearchParams(body).get('message') || '';
      n += 1;
      const id = `${epoch}-${n}`;
      const json = JSON.stringify({ id, name: 'loadgen', text, time: Date.now() });
      res.statusCode = 201;
      res.setHeader('Content-Type', 'application/json');
      res.end(json);
      send(`id: ${id}\ndata: ${json}\n\n`);
    });
  } else {
    res.statusCode = 404;
    res.end();
  }
});
server.listen(Number(port), host, () => {
  const { address, port: bound } = server.address();
  console.error(`info: node-tutorial listening on ${address}:${bound} (1 threads)`);
});
