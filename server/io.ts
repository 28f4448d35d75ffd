/** The typed Socket.IO server, its options, and the Host and origin checks of every handshake. */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';

import { Server, type ServerOptions } from 'socket.io';

import {
  SOCKET_PATH,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '../protocol/events';
import { HOST_REFUSED } from './hosts';
import type { Logger } from './logger';

export type ForkcastIo = Server<ClientToServerEvents, ServerToClientEvents>;
export type Transport = 'websocket' | 'polling';

/** A client back within this long gets the broadcasts it missed (connection state recovery). */
export const RECOVERY_WINDOW_MS = 2 * 60 * 1000;

export interface IoOptions {
  logger: Logger;
  hostServed: (req: IncomingMessage) => boolean;
  allowedOrigins: readonly string[];
  transports: readonly Transport[];
  adapter: ServerOptions['adapter'] | undefined;
}

export function createIo(httpServer: HttpServer, options: IoOptions): ForkcastIo {
  const { logger, hostServed, allowedOrigins, adapter } = options;
  const io: ForkcastIo = new Server(httpServer, {
    path: SOCKET_PATH,
    // The Angular bundle carries its own client.
    serveClient: false,
    // Every legal client message is a few dozen bytes; anything near this is abuse.
    maxHttpBufferSize: 16 * 1024,
    transports: [...options.transports],
    // No middlewares to skip: the checks below are Engine.IO's, run at every handshake.
    connectionStateRecovery: {
      maxDisconnectionDuration: RECOVERY_WINDOW_MS,
      skipMiddlewares: true,
    },
    ...(adapter ? { adapter } : {}),
    // Browsers do not apply CORS to WebSockets, so the origin is checked here for every
    // transport; the `cors` option only adds the headers long-polling needs.
    allowRequest: (req, callback) => {
      // Before the origin check, which only compares Origin with this (possibly foreign) Host.
      if (!hostServed(req)) return callback(HOST_REFUSED, false);
      const allowed = originAllowed(req.headers.origin, req.headers.host, allowedOrigins);
      if (!allowed)
        logger.warn({ origin: req.headers.origin }, 'refused a cross-origin connection');
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    ...(allowedOrigins.length > 0 ? { cors: { origin: [...allowedOrigins] } } : {}),
  });
  // Engine.IO answers other methods with a bare 500; a client's mistake should be a 4xx.
  // OPTIONS is a CORS preflight, which Engine.IO answers when origins are configured.
  const methods = allowedOrigins.length > 0 ? ['GET', 'POST', 'OPTIONS'] : ['GET', 'POST'];
  io.engine.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (methods.includes(req.method ?? '')) return next();
    res.writeHead(405, { Allow: methods.join(', '), 'Content-Type': 'text/plain' });
    res.end('Method not allowed');
  });
  return io;
}

/** Same origin, a listed origin, or no Origin header at all (not a browser). */
function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: readonly string[],
): boolean {
  if (origin === undefined || allowed.includes(origin)) return true;
  // URL lowercases the name; a Host header may not be.
  return URL.canParse(origin) && new URL(origin).host === host?.toLowerCase();
}
