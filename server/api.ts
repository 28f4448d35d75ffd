/** /api: snapshot, history, ops (the sockets' checks, via `perform`), event stream, contracts. */
import path from 'node:path';

import cors from 'cors';
import express, { type Response, type Router } from 'express';

import { buyBodySchema, parse } from '../protocol/validation';
import { originAllowed } from './hosts';
import type { IoOptions } from './io';
import { PATHS } from './paths';
import type { Caller, Outcome } from './realtime';
import type { createEventStream } from './stream';
import { historyTo, type TickerHost } from './ticker-host';

export interface ApiOptions extends Pick<IoOptions, 'allowedOrigins' | 'logger'> {
  ticker: TickerHost;
  perform: (caller: Caller, event: string, args: unknown[], invalid?: string) => Promise<Outcome>;
  stream: ReturnType<typeof createEventStream>;
}

const CODES = { invalid: 400, forbidden: 403, rate_limited: 429, unavailable: 503, internal: 500 };
const refuse = (res: Response, status: number, error: string) =>
  res.status(status).json({ ok: false, error });

export function mountApi(api: Router, options: ApiOptions): void {
  const { ticker, perform, stream, allowedOrigins = [], logger } = options;
  api.use(cors({ origin: [...allowedOrigins], exposedHeaders: ['Retry-After'] }));
  // Browsers let any page send a form POST: the Origin check of the sockets applies here too.
  api.use((req, res, next) =>
    originAllowed(req, allowedOrigins, logger) ? next() : refuse(res, 403, 'origin not allowed'),
  );
  const fresh = (res: Response) => res.set('Cache-Control', 'no-store');
  api.get('/stocks', (_req, res) => fresh(res).json(ticker.snapshot()));
  api.get('/history', (_req, res) =>
    fresh(res).json({ updates: historyTo(ticker.greeting().history, ticker.snapshot()) }),
  );
  api.head('/stream', (_req, res) => res.type('text/event-stream').end());
  api.get('/stream', (req, res, next) => void stream.connect(req, res).catch(next));
  // Generated from protocol/'s schemas at build time (scripts/contracts.mjs).
  for (const doc of ['openapi', 'asyncapi'])
    api.get(`/${doc}.json`, (_req, res) => res.sendFile(path.join(PATHS.contracts, `${doc}.json`)));

  api.post(
    ['/start', '/stop', '/buy'],
    (req, res, next) =>
      // A browser's POST without a body still sends Content-Length: 0.
      req.is('application/json') === false && req.get('Content-Length') !== '0'
        ? refuse(res, 415, 'send application/json')
        : next(),
    express.json({ limit: '4kb' }),
    async (req, res) => {
      const op = req.path.slice(1);
      const body: unknown = req.body;
      let args = body === undefined || JSON.stringify(body) === '{}' ? [] : [body];
      // Refused by perform, after the token and the rate limit, like a socket's bad arguments.
      const parsed = op === 'buy' ? parse(buyBodySchema, 'body', body) : undefined;
      if (parsed) args = parsed.ok ? [parsed.value.name] : [];
      const token = /^Bearer (.+)$/i.exec(req.get('Authorization') ?? '')?.[1];
      const key = req.ip ?? 'unknown';
      const invalid = parsed?.ok === false ? parsed.error : undefined;
      const outcome = await perform({ transport: 'http', key, token }, op, args, invalid);
      if (outcome.ok) return res.json(outcome.ack);
      if (outcome.reason === 'forbidden' && token === undefined)
        return refuse(res.set('WWW-Authenticate', 'Bearer'), 401, outcome.error);
      if (outcome.retryMs !== undefined)
        res.set('Retry-After', String(Math.max(1, Math.ceil(outcome.retryMs / 1_000))));
      return refuse(res, CODES[outcome.reason], outcome.error);
    },
  );
}
