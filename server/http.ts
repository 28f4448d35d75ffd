/** Express: the Host check, helmet, /api, the Pug shell, /healthz, /metrics, static files, 404, 500. */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as zlib } from 'node:zlib';

import compression from 'compression';
import express, { type ErrorRequestHandler, type Response, type Router } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';

import { DEV_ASSETS, findClientAssets, HASHED } from './client-assets';
import { HOST_REFUSED } from './hosts';
import type { ForkcastMetrics } from './metrics';
import { PATHS } from './paths';
import type { TickerHost } from './ticker-host';

export interface HttpOptions {
  logger: Logger;
  ticker: TickerHost;
  metrics: ForkcastMetrics;
  /** DNS rebinding: false for a request to a name this server is not configured for. */
  hostServed: (req: IncomingMessage) => boolean;
  clientDir?: string | undefined;
  /** Load the client from Angular's dev server, which proxies the rest here. */
  devServer?: boolean | undefined;
  trustProxy?: number | string[] | undefined;
  /** Set: the shell tells the page that controlling needs it, so a tab without it only watches. */
  controlToken?: string | undefined;
  api: Router;
}

export function createHttpApp(options: HttpOptions) {
  const { logger, ticker, metrics, clientDir = PATHS.client, devServer = false } = options;
  const app = express().disable('x-powered-by').set('views', PATHS.views).set('view engine', 'pug');
  app.set('trust proxy', options.trustProxy ?? 0);
  // First, so that a foreign Host gets nothing of the app; /socket.io is Engine.IO's (io.ts).
  app.use((req, res, next) => (options.hostServed(req) ? next() : refuse(res, 403, HOST_REFUSED)));
  // CSP (this origin only) with a nonce per response, which Angular puts on component styles.
  const nonce = (res: ServerResponse): string =>
    ((res as Response).locals['cspNonce'] ??= randomBytes(16).toString('base64')) as string;
  const directives = {
    styleSrc: ["'self'", (_req: IncomingMessage, res: ServerResponse) => `'nonce-${nonce(res)}'`],
    fontSrc: ["'self'"],
    frameAncestors: ["'none'"],
    // Served over plain HTTP on a LAN address, upgraded requests would fail to load.
    upgradeInsecureRequests: null,
  };
  app.use(helmet({ contentSecurityPolicy: { directives } }));
  // Before compression, which would hold back the event stream's writes.
  app.use('/api', options.api);
  // Brotli's default quality (4) comes out larger than gzip on main.js.
  app.use(compression({ brotli: { params: { [zlib.BROTLI_PARAM_QUALITY]: 6 } } }));

  // Read once: a deploy replaces the build and restarts the server.
  const assets = devServer ? DEV_ASSETS : findClientAssets(clientDir);
  const shell = { assets, devServer, token: !!options.controlToken };
  app.get('/', (_req, res) => {
    // A new deploy's shell, with its new asset names, is picked up on the next load.
    res.set('Cache-Control', 'no-cache').render('index', { ...shell, cspNonce: nonce(res) });
  });
  app.get('/healthz', (_req, res) => {
    const { running, seq } = ticker.snapshot();
    const { status, details } = ticker.health();
    const body = { ok: status === 'ok', status, running, seq, uptime: process.uptime() };
    res.status(body.ok ? 200 : 503).json({ ...body, pid: ticker.pid ?? null, ...details });
  });
  // On the app's port, like /healthz: serve on loopback or behind a proxy that hides /metrics.
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', metrics.contentType).send(await metrics.scrape());
  });
  // A hashed name never changes content: cached a year; others are revalidated (ETag, 304).
  const setHeaders = (res: ServerResponse, file: string): void => {
    const hashed = HASHED.test(file);
    res.setHeader('Cache-Control', hashed ? 'public, max-age=31536000, immutable' : 'no-cache');
  };
  for (const dir of [PATHS.public, clientDir])
    app.use(express.static(dir, { index: false, setHeaders }));
  app.use((_req, res) => refuse(res, 404, 'Not found'));
  // The one error handler: details go to the log, a short safe message to the client.
  const onError: ErrorRequestHandler = (error: HttpError | null, req, res, next) => {
    if (res.headersSent) return next(error);
    const given = error?.status;
    const status = typeof given === 'number' && given >= 400 && given < 600 ? given : 500;
    const log = { err: error, url: req.originalUrl };
    if (status >= 500) logger.error(log, 'request failed');
    else logger.debug(log, 'bad request');
    // http-errors (body-parser's) marks the messages that are safe to show.
    const message = error?.expose ? error.message : 'Bad request';
    res.status(status).json({ ok: false, error: status < 500 ? message : 'Internal server error' });
  };
  return app.use(onError);
}

type HttpError = Partial<{ status: unknown; expose: boolean; message: string }>;

const refuse = (res: Response, status: number, error: string) =>
  res.status(status).format({
    json: () => res.json({ ok: false, error }),
    default: () => res.type('text').send(error),
  });
