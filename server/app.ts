/**
 * createApp() wires Express, Pug, static files, health, Socket.IO and the ticker. Nothing
 * listens and nothing is forked until listen(), so tests can build it, listen on port 0 and
 * close it.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { Server } from 'socket.io';

import { SOCKET_PATH, STATUS } from '../protocol/events';
import { seedTickerState, type TickerState } from '../protocol/ipc';
import type { Logger } from './logger';
import { PATHS } from './paths';
import { attachRealtime, type ForkcastIo } from './realtime';
import type { TickerHost } from './ticker-host';
import { TickerSupervisor } from './ticker-supervisor';

export interface AppConfig {
  logger: Logger;
  /** Interval between ticks while running. */
  tickMs: number;
  /** State the ticker starts from (default: the seed prices, stopped). */
  initialState?: TickerState;
  /** Compiled ticker child entry (default dist/ticker/main.js). */
  tickerChildPath?: string;
  /** Folder of the built Angular client (default dist/client). */
  clientDir?: string;
  /** Use this ticker instead of forking one (another host implementation). */
  ticker?: TickerHost;
}

export interface ForkcastApp {
  readonly app: Express;
  readonly httpServer: HttpServer;
  readonly io: ForkcastIo;
  readonly ticker: TickerHost;
  /** Starts the ticker, then accepts connections. Port 0 picks a free port. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Tells clients, disconnects them, closes HTTP and stops the ticker. Safe to call twice. */
  close(): Promise<void>;
}

/** Every legal client message is a few dozen bytes; anything near this is abuse. */
const MAX_MESSAGE_BYTES = 16 * 1024;

export function createApp(config: AppConfig): ForkcastApp {
  const { logger } = config;
  const clientDir = config.clientDir ?? PATHS.client;
  const ticker =
    config.ticker ??
    new TickerSupervisor({
      childPath: config.tickerChildPath ?? PATHS.tickerChild,
      tickMs: config.tickMs,
      initialState: config.initialState ?? seedTickerState(Date.now()),
      logger: logger.child({ part: 'ticker' }),
    });

  const app = express();
  app.disable('x-powered-by');
  app.set('views', PATHS.views);
  app.set('view engine', 'pug');

  app.get('/', renderShell(clientDir));
  app.get('/healthz', (_req, res) => {
    const snapshot = ticker.snapshot();
    const pid = ticker.pid ?? null;
    res.status(pid === null ? 503 : 200).json({
      ok: pid !== null,
      running: snapshot.running,
      seq: snapshot.seq,
      uptime: process.uptime(),
      pid,
    });
  });
  app.use(express.static(PATHS.public, { index: false }));
  app.use(express.static(clientDir, { index: false }));
  app.use(notFound);
  app.use(errorHandler(logger));

  const httpServer = createServer(app);
  const io: ForkcastIo = new Server(httpServer, {
    path: SOCKET_PATH,
    // The Angular bundle carries its own client; no need to serve /socket.io/socket.io.js.
    serveClient: false,
    maxHttpBufferSize: MAX_MESSAGE_BYTES,
  });
  const detach = attachRealtime(io, ticker, logger.child({ part: 'realtime' }));

  let closing: Promise<void> | null = null;

  return {
    app,
    httpServer,
    io,
    ticker,
    async listen(port, host) {
      await ticker.open();
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(port, host, () => {
          httpServer.off('error', reject);
          resolve();
        });
      });
      return httpServer.address() as AddressInfo;
    },
    close() {
      closing ??= (async () => {
        io.emit('status', { message: STATUS.shuttingDown, running: ticker.snapshot().running });
        detach();
        // io.close() disconnects every socket and closes the HTTP server; idle keep-alive
        // connections would hold that open, so they are closed explicitly.
        const httpClosed = new Promise<void>((resolve) => {
          if (!httpServer.listening) return resolve();
          httpServer.once('close', () => resolve());
        });
        void io.close();
        httpServer.closeAllConnections();
        await httpClosed;
        await ticker.close();
      })();
      return closing;
    },
  };
}

function renderShell(clientDir: string): RequestHandler {
  return (_req, res) => {
    res.render('index', { clientBuilt: existsSync(path.join(clientDir, 'main.js')) });
  };
}

const notFound: RequestHandler = (_req, res) => {
  res.status(404).format({
    json: () => res.json({ error: 'Not found' }),
    default: () => res.type('text').send('Not found'),
  });
};

/** The one error handler: details go to the log, a short safe message to the client. */
function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    const status = httpStatusOf(error);
    if (status >= 500) logger.error({ err: error, url: req.originalUrl }, 'request failed');
    else logger.debug({ err: error, url: req.originalUrl }, 'bad request');
    res.status(status).json({ error: status >= 500 ? 'Internal server error' : 'Bad request' });
  };
}

function httpStatusOf(error: unknown): number {
  if (typeof error === 'object' && error !== null && 'status' in error) {
    const status = error.status;
    if (typeof status === 'number' && status >= 400 && status < 600) return status;
  }
  return 500;
}
