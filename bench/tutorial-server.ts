/**
 * The second yardstick: the classic demo's design as a Socket.IO tutorial would write it. An
 * HTTP server, a Socket.IO server with its defaults (no rooms, no connection state recovery),
 * a forked ticker child, and `io.emit` of every update the child sends; the current state to
 * each new client, and `start` to start the ticker. Nothing else.
 *
 * Env: TICK_MS (read by the child), PORT (default 0: any free port). Prints one JSON line with
 * the port once listening.
 */
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import { Server } from 'socket.io';

import { SOCKET_PATH, type RunAck, type UpdatePayload } from '../protocol/events';

const httpServer = createServer();
const io = new Server(httpServer, { path: SOCKET_PATH, serveClient: false });
const ticker = fork(path.join(__dirname, 'tutorial-ticker.js'));
let last: UpdatePayload | undefined;

ticker.on('message', (payload: UpdatePayload) => {
  last = payload;
  io.emit('update', payload);
});

io.on('connection', (socket) => {
  socket.emit('update', last);
  // A client decides what arrives as `ack`: call it only if it is a function.
  socket.on('start', (ack?: (result: RunAck) => void) => {
    ticker.send('start');
    if (typeof ack === 'function') ack({ ok: true, running: true });
  });
});

// The child sends its state as soon as it runs: listening only then, every client gets one.
ticker.once('message', () => {
  httpServer.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
    const { port } = httpServer.address() as AddressInfo;
    process.stdout.write(`${JSON.stringify({ msg: 'tutorial baseline listening', port })}\n`);
  });
});
process.on('SIGTERM', () => process.exit(0));
