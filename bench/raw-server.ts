/**
 * The yardstick: the broadcast server a developer would write with plain `ws` (the "server
 * broadcast" and "detect broken connections" recipes of ws's README), doing forkcast's work
 * with nothing else: the same update payload at the same rate, the current state to each new
 * client, and a heartbeat at Socket.IO's default interval so both sides pay for liveness.
 *
 * Env: TICK_MS (default 1000), PORT (default 0: any free port). Prints one JSON line with the
 * port once listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { WebSocket, WebSocketServer } from 'ws';

import { advance, state, tickMs } from './market';

const HEARTBEAT_MS = 25_000;

function tick(): void {
  const data = JSON.stringify(advance());
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) client.send(data);
  }
}

// Like forkcast's ticker, it ticks once started (POST /start), at once and then every TICK_MS:
// the benchmark connects its clients first and starts both servers the same way.
const server = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/start') {
    res.writeHead(404).end();
    return;
  }
  if (!state.running) {
    state.running = true;
    tick();
    setInterval(tick, tickMs);
  }
  res.writeHead(204).end();
});
const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 16 * 1024 });
const alive = new WeakSet<WebSocket>();

wss.on('connection', (ws) => {
  alive.add(ws);
  ws.on('pong', () => alive.add(ws));
  ws.on('error', () => ws.terminate());
  ws.send(JSON.stringify(state));
});

setInterval(() => {
  for (const client of wss.clients) {
    if (!alive.has(client)) {
      client.terminate();
      continue;
    }
    alive.delete(client);
    client.ping();
  }
}, HEARTBEAT_MS);

server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'raw baseline listening', port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
