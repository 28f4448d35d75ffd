/** The typed Socket.IO server, its options, and the Host and origin checks of every handshake. */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';

import { Server, type ServerOptions, type Socket } from 'socket.io';

import { SOCKET_PATH } from '../protocol/events';
import type { ClientToServerEvents, ServerToClientEvents } from '../protocol/events';
import { HOST_REFUSED, originAllowed } from './hosts';
import type { HttpOptions } from './http';

export type ForkcastIo = Server<ClientToServerEvents, ServerToClientEvents>;
export type ForkcastSocket = Socket<ClientToServerEvents, ServerToClientEvents>;

/** A client back within this long gets the broadcasts it missed (connection state recovery). */
export const RECOVERY_WINDOW_MS = 2 * 60 * 1000;

export interface IoOptions extends Pick<HttpOptions, 'logger' | 'hostServed'> {
  /** Origins other than the server's own whose pages may connect. */
  allowedOrigins?: readonly string[];
  transports?: readonly ('websocket' | 'polling')[];
  adapter?: ServerOptions['adapter'];
}

export function createIo(httpServer: HttpServer, options: IoOptions): ForkcastIo {
  const { allowedOrigins = [], transports = ['websocket', 'polling'] } = options;
  const cors = allowedOrigins.length > 0;
  const io: ForkcastIo = new Server(httpServer, {
    path: SOCKET_PATH,
    serveClient: false,
    // Every legal client message is a few dozen bytes; anything near this is abuse.
    maxHttpBufferSize: 16 * 1024,
    transports: [...transports],
    connectionStateRecovery: { maxDisconnectionDuration: RECOVERY_WINDOW_MS },
    adapter: options.adapter,
    // Browsers apply no CORS to WebSockets, so Origin is checked here; `cors` is for polling only.
    allowRequest: (req, callback) => {
      // Before the origin check, which only compares Origin with this (possibly foreign) Host.
      if (!options.hostServed(req)) return callback(HOST_REFUSED, false);
      const allowed = originAllowed(req, allowedOrigins, options.logger);
      callback(allowed ? null : 'origin not allowed', allowed);
    },
    ...(cors ? { cors: { origin: [...allowedOrigins] } } : {}),
  });
  // Engine.IO answers other methods with a bare 500, not a 4xx; OPTIONS is its CORS preflight.
  const methods = cors ? ['GET', 'POST', 'OPTIONS'] : ['GET', 'POST'];
  io.engine.use((req: IncomingMessage, res: ServerResponse, next: () => void) => {
    if (methods.includes(req.method ?? '')) return next();
    res.writeHead(405, { Allow: methods.join(', '), 'Content-Type': 'text/plain' });
    res.end('Method not allowed');
  });
  return io;
}
