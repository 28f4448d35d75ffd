/** The HTTP API against a real server: the snapshot and history, each op and each refusal with
 * its status, the event stream through a real EventSource (resumed by Last-Event-ID across a
 * restart), a stream client that stops reading, CORS and the origin check, the contracts. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { EventSource } from 'eventsource';

import { STATUS, type UpdatePayload } from '../../protocol/events';
import { updateSchema } from '../../protocol/validation';
import { createApp, type AppConfig, type ForkcastApp } from '../../server/app';
import { createLogger } from '../../server/logger';
import { createStateFile } from '../../server/state-file';
import { createEventStream } from '../../server/stream';
import { capturingLogger, linesWith } from '../helpers/logs';
import { scrape, valueOf } from '../helpers/prometheus';
import { Recorder } from '../helpers/recorder';
import { listenToStream, rawRequest, type StreamEvent } from '../helpers/server';

const TOKEN = 'correct-horse-battery-staple';
const GOOD = 'http://good.example';
const WAIT = { timeoutMs: 10_000 };
const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-api-'));
const apps: ForkcastApp[] = [];
const streams: EventSource[] = [];

/** A real app on 127.0.0.1 (`port` 0: any), its state in `file`. */
async function serve(config: Partial<AppConfig> & { port?: number; file?: string } = {}) {
  const logger = createLogger('silent');
  const store = createStateFile({ path: config.file ?? path.join(dir, 'state.json'), logger });
  const initialState = await store.open();
  const app = createApp({ logger, tickMs: 100, store, initialState, ...config });
  apps.push(app);
  const { port } = await app.listen(config.port ?? 0, '127.0.0.1');
  return { app, port, api: `http://127.0.0.1:${port}/api` };
}

const post = (url: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const seqsOf = (events: Recorder<StreamEvent>) =>
  events.items
    .filter(({ type }) => type === 'update')
    .map(({ data }) => (data as UpdatePayload).seq);

afterAll(async () => {
  for (const source of streams) source.close();
  await Promise.all(apps.map((app) => app.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('with a control token', () => {
  let api = '';
  let url = '';
  beforeAll(async () => {
    ({ api } = await serve({
      file: path.join(dir, 'token.json'),
      controlToken: TOKEN,
      opsPerSecond: 20,
      allowedOrigins: [GOOD],
    }));
    url = api.replace(/\/api$/, '');
  });
  const auth = { Authorization: `Bearer ${TOKEN}` };

  test('the snapshot and the history are the sockets’ payloads, never cached', async () => {
    const stocks = await fetch(`${api}/stocks`);
    expect(stocks.headers.get('cache-control')).toBe('no-store');
    const snapshot = updateSchema.parse(await stocks.json());
    const history = (await (await fetch(`${api}/history`)).json()) as { updates: unknown[] };
    expect(history.updates.at(-1)).toEqual(snapshot);
    expect(stocks.headers.get('x-content-type-options')).toBe('nosniff');
    const foreign = await rawRequest(url, '/api/stocks', { host: 'evil.example' });
    expect(foreign.status).toBe(403);
  });

  test.each([
    ['no token', 'start', {}, {}, 401, /control token/],
    ['a wrong token', 'start', {}, { Authorization: 'Bearer wrong-token-1' }, 403, /control token/],
    ['an unknown stock', 'buy', { name: 'Nope' }, auth, 400, /unknown stock "Nope"/],
    ['no name', 'buy', {}, auth, 400, /name/],
    ['a body for start', 'start', { x: 1 }, auth, 400, /takes no arguments/],
    ['a body that is not JSON', 'buy', '{bad', auth, 400, /JSON/],
    ['a body over 4 KB', 'buy', { name: 'a'.repeat(5_000) }, auth, 413, /too large/],
  ])('%s is refused (%s) and changes nothing', async (_case, op, body, headers, status, error) => {
    const before = await (await fetch(`${api}/stocks`)).json();
    const res = await post(`${api}/${op}`, body, headers);
    expect([res.status, await res.json()]).toEqual([
      status,
      { ok: false, error: expect.stringMatching(error) },
    ]);
    if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await (await fetch(`${api}/stocks`)).json()).toEqual(before);
  });

  test('the contracts are served, generated from the same schemas', async () => {
    const openapi = (await (await fetch(`${api}/openapi.json`)).json()) as Record<string, unknown>;
    expect(openapi).toMatchObject({ openapi: '3.1.0', paths: { '/api/stream': {} } });
    const asyncapi = (await (await fetch(`${api}/asyncapi.json`)).json()) as Record<
      string,
      unknown
    >;
    expect(asyncapi).toMatchObject({ asyncapi: '3.0.0' });
  });

  test('a body that is not JSON by its type gets 415', async () => {
    const res = await fetch(`${api}/buy`, { method: 'POST', headers: auth, body: 'name=Apple' });
    expect([res.status, await res.json()]).toEqual([415, { ok: false, error: expect.any(String) }]);
  });

  test('start, buy and stop answer as the socket acks do; the stream sees them in order', async () => {
    const events = listenToStream(`${api}/stream`, streams);
    await events.waitFor(({ type }) => type === 'opening', { ...WAIT, what: 'the greeting' });
    expect(await (await post(`${api}/start`, undefined, auth)).json()).toEqual({
      ok: true,
      running: true,
    });
    const bought = await post(`${api}/buy`, { name: 'Apple' }, auth);
    const ack = (await bought.json()) as { ok: true; stock: { name: string; price: number } };
    expect(ack).toEqual({ ok: true, stock: { name: 'Apple', price: expect.any(Number) } });
    await events.waitFor(
      ({ type, data }) =>
        type === 'update' && (data as UpdatePayload).stocks[0]!.price === ack.stock.price,
      { ...WAIT, what: 'the bought price' },
    );
    expect(await (await post(`${api}/stop`, {}, auth)).json()).toEqual({
      ok: true,
      running: false,
    });
    await events.waitFor(
      ({ type, data }) =>
        type === 'status' && (data as { message: string }).message === STATUS.stopped,
      { ...WAIT, what: 'Stopped' },
    );
    const seqs = seqsOf(events);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    const started = events.items.findIndex(({ type }) => type === 'status');
    expect(events.items[started]!.data).toEqual({ message: STATUS.started, running: true });
    // Every update carries its seq as the event id.
    for (const { type, id, data } of events.items)
      if (type === 'update') expect(id).toBe(String((data as UpdatePayload).seq));
    const metrics = await scrape(url);
    const ok = { op: 'buy', transport: 'http', result: 'ok' };
    expect(valueOf(metrics, 'forkcast_ops_total', ok)).toBe(1);
    // The table's two bad buy bodies were counted like a socket's bad arguments.
    const invalid = { op: 'buy', transport: 'http', result: 'rejected', reason: 'invalid' };
    expect(valueOf(metrics, 'forkcast_ops_total', invalid)).toBe(2);
  });

  test('past the rate limit, 429 with Retry-After', async () => {
    const answers = await Promise.all(
      Array.from({ length: 60 }, () => post(`${api}/stop`, {}, auth)),
    );
    const limited = answers.find((res) => res.status === 429);
    expect(limited?.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(await limited?.json()).toEqual({ ok: false, error: expect.stringMatching(/too many/) });
  });

  test('CORS follows CORS_ORIGINS; a foreign origin is refused', async () => {
    const preflight = await fetch(`${api}/buy`, {
      method: 'OPTIONS',
      headers: { Origin: GOOD, 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe(GOOD);
    const good = await fetch(`${api}/stocks`, { headers: { Origin: GOOD } });
    expect([good.status, good.headers.get('access-control-allow-origin')]).toEqual([200, GOOD]);
    const evil = await post(`${api}/start`, undefined, { ...auth, Origin: 'http://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

test('ops while the ticker cannot take them get 503', async () => {
  const logger = createLogger('silent');
  const app = createApp({ logger, tickMs: 100 });
  apps.push(app);
  // Serving, but the ticker never opened: as while it restarts.
  const server = app.httpServer.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const res = await post(`http://127.0.0.1:${port}/api/buy`, { name: 'Apple' });
  expect([res.status, await res.json()]).toEqual([
    503,
    { ok: false, error: expect.stringMatching(/restarting/) },
  ]);
});

test('a stream resumes by Last-Event-ID across a server restart, or says it could not', async () => {
  const file = path.join(dir, 'restart.json');
  const first = await serve({ file });
  await post(`${first.api}/start`);
  let target = first.port;
  // The EventSource reconnects by itself, with its Last-Event-ID, to wherever `target` says.
  const events = listenToStream(`${first.api}/stream`, streams, (input, init) =>
    fetch(new URL(input).href.replace(/:\d+\//, `:${target}/`), init),
  );
  await events.waitForCount(5, ({ type }) => type === 'update', { ...WAIT, what: 'updates' });
  await first.app.close();
  const beforeRestart = Math.max(...seqsOf(events));
  // A new server on another port with the same state file: saved history and seq.
  const second = await serve({ file });
  target = second.port;
  await events.waitFor(
    ({ type, data }) => type === 'update' && (data as UpdatePayload).seq >= beforeRestart + 3,
    { ...WAIT, what: 'updates after the restart' },
  );
  const seqs = seqsOf(events);
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  expect(events.items.filter(({ type }) => type === 'resync')).toEqual([]);

  // An id the history no longer covers (or never did): a resync, then a fresh snapshot.
  for (const lastEventId of ['999999999', 'not-a-seq']) {
    const res = await fetch(`${second.api}/stream`, { headers: { 'Last-Event-ID': lastEventId } });
    let text = '';
    for await (const chunk of res.body!) {
      text += Buffer.from(chunk as Uint8Array).toString();
      if (text.includes('event:opening')) break;
    }
    expect(text).toMatch(
      new RegExp(
        `^retry:\\d+\\n\\nevent:resync\\ndata:\\{"lastEventId":"${lastEventId}"\\}\\n\\nevent:update\\nid:\\d+\\n`,
      ),
    );
  }
});

test('a stream sends a heartbeat comment; a client that stops reading is dropped, not buffered', async () => {
  const { logger, lines } = capturingLogger();
  const update: UpdatePayload = { stocks: [], running: true, seq: 1, ts: 0 };
  const host = { snapshot: () => update, greeting: () => ({ history: [], opening: update }) };
  const stream = createEventStream(host, logger, { maxUnsent: 64 * 1024, heartbeatMs: 50 });
  const server: Server = createServer((req, res) => void stream.connect(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const received = new Recorder<string>();
  socket.on('data', (chunk: Buffer) => received.push(chunk.toString()));
  await received.waitFor((text) => text.includes('\n:\n\n'), { ...WAIT, what: 'a heartbeat' });
  // Stops reading: the kernel takes a few megabytes, then the server's own buffer fills up.
  socket.pause();
  const closed = new Promise((resolve) => socket.once('close', resolve));
  const dropped = () => linesWith(lines, 'dropped a stream client that stopped reading');
  for (let seq = 2; dropped().length === 0 && seq < 300_000; seq++)
    stream.publish({ event: 'update', payload: { ...update, seq } });
  expect(dropped()).toHaveLength(1);
  socket.resume();
  await closed;
  stream.close();
  server.close();
});
