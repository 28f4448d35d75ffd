// Angular's dev server (`ng serve`, run by `npm run dev`) serves the client's files from memory
// and sends everything that is the Express server's to it: the Pug shell, Socket.IO (WebSocket
// upgrades included), /healthz, /metrics and the files of public/. The Host header is passed on
// unchanged, so the server's same-origin check accepts the page's socket.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('.', import.meta.url);
// The compiled contract, so the path is the one the server uses; `npm run dev` builds the
// server (scripts/ensure-built.mjs --server) before it starts ng serve.
const { SOCKET_PATH } = createRequire(import.meta.url)('./dist/protocol/events.js');

// The server's own default port (server/config.ts); scripts/dev.mjs passes PORT to both.
const server = { target: `http://127.0.0.1:${process.env.PORT || 4561}` };

export default {
  // The shell at / only (with or without a query string): every other path is Vite's or the app's.
  '^/(?:\\?.*)?$': server,
  [SOCKET_PATH]: { ...server, ws: true },
  '/healthz': server,
  '/metrics': server,
  ...Object.fromEntries(readdirSync(new URL('public', root)).map((file) => [`/${file}`, server])),
};
