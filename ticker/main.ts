/**
 * Entry of the ticker child process, forked by the server's supervisor. It owns the prices and
 * talks to the server over the IPC channel only.
 */
import type { ChildMessage } from '../protocol/ipc';
import { createTickerChild } from './child';

if (!process.send) {
  process.stderr.write('ticker/main must be started with child_process.fork (no IPC channel)\n');
  process.exit(1);
}

function send(message: ChildMessage): void {
  // After the parent is gone there is nobody to tell; the disconnect handler ends us.
  // The callback keeps a send that races the parent hanging up (EPIPE) from becoming an
  // unhandled error; the disconnect that follows ends the process cleanly.
  if (process.connected) process.send?.(message, undefined, {}, () => undefined);
}

const child = createTickerChild(send, {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
});

process.on('message', (raw) => child.receive(raw));

// The parent owns our lifetime. When its channel closes (clean shutdown, crash or kill -9 of
// the server) we exit, so no orphan ticker survives it.
process.on('disconnect', () => {
  child.dispose();
  process.exit(0);
});

// Ctrl-C in a terminal signals the whole process group. The server decides when we stop (it
// stops us after it has told the clients), so the signal is not ours to act on.
process.on('SIGINT', () => undefined);
