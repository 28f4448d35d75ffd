/** Entry of the ticker child process, forked by the server; it talks over the IPC channel only. */
import { createTickerChild } from './child';

const receive = createTickerChild(
  // The callback swallows a send racing the parent's hang-up (EPIPE); disconnect ends us.
  (message) => process.connected && process.send?.(message, undefined, {}, () => undefined),
  { now: Date.now, setTimeout, clearTimeout },
);
process.on('message', receive);

// The parent owns our lifetime: when its channel closes, however it died, no orphan survives.
process.on('disconnect', () => process.exit(0));

// Ctrl-C signals the whole process group; the server stops us once it has told the clients.
process.on('SIGINT', () => undefined);
