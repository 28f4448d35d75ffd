/** createApp() wires Express, Pug, static files, health, Socket.IO and the ticker. Nothing listens
 * or forks until listen(), so tests can build it, listen on port 0 and close it. */
import { randomBytes } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants as zlib } from 'node:zlib';

import compression from 'compression';
import express, {
  type ErrorRequestHandler,
  type Express,
  type RequestHandler,
  type Response,
} from 'express';
import helmet from 'helmet';
import type { ServerOptions } from 'socket.io';

import { STATUS, type UpdatePayload } from '../protocol/events';
import { seedTickerState } from '../protocol/ipc';
import { DEV_SERVER_ASSETS, findClientAssets, HASHED, type ClientAssets } from './client-assets';
import { hostAllowed } from './hosts';
import type { Logger } from './logger';
import { createMetrics, type ForkcastMetrics } from './metrics';
import { PATHS } from './paths';
import type { StateStore } from './state-file';
import { attachRealtime } from './realtime';
import { createIo, HOST_REFUSED, type ForkcastIo, type Transport } from './io';
import type { TickerHost } from './ticker-host';
import { TickerSupervisor } from './ticker-supervisor';

export interface AppConfig {
  logger: Logger;
  tickMs: number;
  /** State the ticker starts from (default: the seed prices, stopped). */
  initialState?: UpdatePayload;
  /** Compiled ticker child entry (default dist/ticker/main.js). */
  tickerChildPath?: string;
  /** Folder of the built Angular client (default dist/client). */
  clientDir?: string;
  /** Load the client from Angular's dev server, which proxies the rest here (default false). */
  devServer?: boolean;
  /** Use this ticker instead of forking one (another host implementation). */
  ticker?: TickerHost;
  /** start / stop / buy allowed per connection per second (default 50). */
  opsPerSecond?: number;
  /** When set, only clients presenting it (handshake `auth.token`) may start, stop or buy. */
  controlToken?: string | undefined;
  /** Origins other than the server's own whose pages may connect (default: none). */
  allowedOrigins?: readonly string[];
  /** Host names served besides localhost and IP literals (default: none; see hosts.ts). */
  allowedHosts?: readonly string[];
  /** Where the ticker's state is kept across restarts (default: nowhere). */
  stateStore?: StateStore;
  /** A Socket.IO adapter factory (a cluster's Redis Streams adapter; default in-memory). */
  adapter?: ServerOptions['adapter'];
  /** Transports the server accepts (default both; `['websocket']` behind a non-sticky proxy). */
  transports?: readonly Transport[];
}

export interface ForkcastApp {
  readonly app: Express;
  readonly httpServer: HttpServer;
  readonly io: ForkcastIo;
  readonly ticker: TickerHost;
  /** This app's instruments (a host built outside createApp reports its restarts here). */
  readonly metrics: ForkcastMetrics;
  /** Starts the ticker, then accepts connections. Port 0 picks a free port. */
  listen(port: number, host?: string): Promise<AddressInfo>;
  /** Tells clients, disconnects them, closes HTTP and stops the ticker. Safe to call twice. */
  close(): Promise<void>;
}

const DEFAULT_OPS_PER_SECOND = 50;
/** How long close() lets clients end their connections before cutting them. */
const CLOSE_GRACE_MS = 1_000;

export function createApp(config: AppConfig): ForkcastApp {
  const { logger } = config;
  const clientDir = config.clientDir ?? PATHS.client;
  const metrics = createMetrics();
  const ticker =
    config.ticker ??
    new TickerSupervisor({
      childPath: config.tickerChildPath ?? PATHS.tickerChild,
      tickMs: config.tickMs,
      initialState: config.initialState ?? seedTickerState(Date.now()),
      logger: logger.child({ part: 'ticker' }),
      // A hook, not 'lost': a crash loop is one outage but many forks, and a host that does
      // not fork has no restarts to report.
      onRestart: () => metrics.tickerRestarted(),
      ...(config.stateStore ? { store: config.stateStore } : {}),
    });

  const allowedOrigins = config.allowedOrigins ?? [];
  const allowedHosts = config.allowedHosts ?? [];
  /** DNS rebinding: a request for a name this server is not configured for is refused. */
  const hostServed = (req: IncomingMessage): boolean => {
    if (hostAllowed(req.headers.host, allowedHosts)) return true;
    logger.warn({ host: req.headers.host?.slice(0, 100) }, 'refused a request for a foreign host');
    return false;
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('views', PATHS.views);
  app.set('view engine', 'pug');
  // First, so that a foreign Host gets nothing of the app; /socket.io is Engine.IO's, below.
  app.use((req, res, next) => {
    if (hostServed(req)) return next();
    res.status(403).format({
      json: () => res.json({ error: HOST_REFUSED }),
      default: () => res.type('text').send(HOST_REFUSED),
    });
  });
  app.use(securityHeaders());
  // Brotli's default quality (4) comes out larger than gzip on main.js.
  app.use(compression({ brotli: { params: { [zlib.BROTLI_PARAM_QUALITY]: 6 } } }));

  // Read once: a deploy replaces the build and restarts the server.
  const assets = config.devServer ? DEV_SERVER_ASSETS : findClientAssets(clientDir);
  app.get('/', renderShell(assets, config.devServer ?? false));
  app.get('/healthz', (_req, res) => {
    const snapshot = ticker.snapshot();
    const health = ticker.health();
    res.status(health.status === 'ok' ? 200 : 503).json({
      ok: health.status === 'ok',
      status: health.status,
      running: snapshot.running,
      seq: snapshot.seq,
      uptime: process.uptime(),
      pid: ticker.pid ?? null,
      ...health.details,
    });
  });
  app.get('/metrics', serveMetrics(metrics));
  app.use(express.static(PATHS.public, { index: false, setHeaders: revalidate }));
  app.use(express.static(clientDir, { index: false, setHeaders: cacheIfHashed }));
  app.use(notFound);
  app.use(errorHandler(logger));

  const httpServer = createServer(app);
  // Every TCP connection, WebSockets included, so that close() can cut what peers leave open.
  const connections = new Set<Socket>();
  httpServer.on('connection', (socket: Socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
  });
  const io = createIo(httpServer, {
    logger,
    hostServed,
    allowedOrigins,
    transports: config.transports ?? ['websocket', 'polling'],
    adapter: config.adapter,
  });
  const detach = attachRealtime(io, ticker, {
    logger: logger.child({ part: 'realtime' }),
    opsPerSecond: config.opsPerSecond ?? DEFAULT_OPS_PER_SECOND,
    controlToken: config.controlToken,
    metrics,
  });

  let closing: Promise<void> | null = null;

  return {
    app,
    httpServer,
    io,
    ticker,
    metrics,
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
        // Stop accepting first, so nobody joins a server that is going away.
        const httpClosed = new Promise<void>((resolve) => {
          if (!httpServer.listening) return resolve();
          httpServer.close(() => resolve());
        });
        // This node's clients only: in a cluster the others stay up.
        io.local.emit('status', {
          message: STATUS.shuttingDown,
          running: ticker.snapshot().running,
        });
        detach();
        // Waits for the last state writes; fails (non-zero exit) if the state could not be kept.
        const tickerClosed = ticker.close();
        // io.close() waits for every connection to end, which a silent peer can put off forever.
        const cut = setTimeout(() => {
          for (const socket of connections) socket.destroy();
        }, CLOSE_GRACE_MS);
        await Promise.all([io.close(), httpClosed]).finally(() => clearTimeout(cut));
        await tickerClosed;
      })();
      return closing;
    },
  };
}

/** helmet's CSP (this origin only) plus a per-response nonce that Angular reads from
 * `ngCspNonce` and puts on the `<style>` tags it creates for component styles. */
function securityHeaders(): RequestHandler {
  const headers = helmet({
    contentSecurityPolicy: {
      directives: {
        styleSrc: ["'self'", (_req, res) => `'nonce-${cspNonceOf(res as Response)}'`],
        connectSrc: ["'self'"],
        fontSrc: ["'self'"],
        frameAncestors: ["'none'"],
        // Served over plain HTTP on a LAN address, upgraded requests would fail to load.
        upgradeInsecureRequests: null,
      },
    },
  });
  return (req, res, next) => {
    res.locals['cspNonce'] = randomBytes(16).toString('base64');
    headers(req, res, next);
  };
}

const cspNonceOf = (res: Response): string => String(res.locals['cspNonce']);

function renderShell(assets: ClientAssets, devServer: boolean): RequestHandler {
  return (_req, res) => {
    // A new deploy's shell, with its new asset names, is picked up on the next load.
    res.set('Cache-Control', 'no-cache');
    res.render('index', { assets, devServer, cspNonce: cspNonceOf(res) });
  };
}

/** Unhashed files may change under the same name, so browsers revalidate them (ETag, 304). */
function revalidate(res: ServerResponse): void {
  res.setHeader('Cache-Control', 'no-cache');
}

/** A hashed name never changes content: cached for a year without revalidation. */
function cacheIfHashed(res: ServerResponse, file: string): void {
  if (HASHED.test(file)) res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  else revalidate(res);
}

/** Served on the app's own port, like /healthz: keep the server on loopback or behind a proxy
 * that does not pass /metrics through. */
function serveMetrics(metrics: ForkcastMetrics): RequestHandler {
  return async (_req, res) => {
    const text = await metrics.scrape();
    res.set('Content-Type', metrics.contentType).send(text);
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
