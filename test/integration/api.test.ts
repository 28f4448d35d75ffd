/** The HTTP API against a real server: each op and refusal, the snapshot, the history and the
 * event stream, resumed by Last-Event-ID across a restart. CORS and origins: http.test.ts's. */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';

import type { EventSource } from 'eventsource';
import { pino } from 'pino';

import { STATUS, type StatusPayload, type UpdatePayload } from '../../protocol/events';
import { updateSchema } from '../../protocol/validation';
import { createApp, type ForkcastApp } from '../../server/app';
import { createEventStream } from '../../server/stream';
import { capturingLogger, linesWith } from '../helpers/logs';
import { scrape, valueOf } from '../helpers/prometheus';
import { Recorder, withDeadline } from '../helpers/recorder';
import {
  connectWelcomed,
  expectEveryStreamUpdate,
  listenToStream,
  startServer,
  type TestClient,
} from '../helpers/server';
import { freshStateFile } from '../helpers/server-process';

const TOKEN = 'correct-horse-battery-staple';
const WAIT = { timeoutMs: 10_000 };
type Streamed = UpdatePayload & StatusPayload;
const apps: ForkcastApp[] = [];
const streams: EventSource[] = [];
const clients: TestClient[] = [];

async function serve(config: Parameters<typeof startServer>[0]) {
  const { forkcast, url } = await startServer(config);
  apps.push(forkcast);
  return { app: forkcast, url, port: new URL(url).port, api: `${url}/api` };
}

const json = async (url: string): Promise<unknown> => (await fetch(url)).json();
const answer = async (res: Response) => [res.status, await res.json()];
const refusal = (error: RegExp) => ({ ok: false, error: expect.stringMatching(error) });

const post = (url: string, body?: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

afterAll(async () => {
  for (const source of streams) source.close();
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.close()));
});

let api: string, url: string;
beforeAll(async () => {
  ({ api, url } = await serve({ tickMs: 100, controlToken: TOKEN, opsPerSecond: 20 }));
});
const auth = { Authorization: `Bearer ${TOKEN}` };
const asText = { ...auth, 'Content-Type': 'text/plain' };

test.each([
  ['no token', 'start', {}, {}, 401, /control token/],
  ['a wrong token', 'start', {}, { Authorization: 'Bearer wrong-token-1' }, 403, /control token/],
  ['an unknown stock', 'buy', { name: 'Nope' }, auth, 400, /unknown stock "Nope"/],
  ['no name', 'buy', {}, auth, 400, /bad body: name: stock name must be a string/],
  ['a key besides name', 'buy', { name: 'Apple', n: 5 }, auth, 400, /Unrecognized key: "n"/],
  ['a body for start', 'start', { x: 1 }, auth, 400, /takes no arguments/],
  ['a body that is not JSON', 'buy', '{bad', auth, 400, /JSON/],
  ['a body over 4 KB', 'buy', { name: 'a'.repeat(5_000) }, auth, 413, /too large/],
  ['a body not JSON by its type', 'buy', 'name=Apple', asText, 415, /./],
])('%s is refused (%s) and changes nothing', async (_case, op, body, headers, status, error) => {
  const before = await json(`${api}/stocks`);
  const res = await post(`${api}/${op}`, body, headers);
  expect(await answer(res)).toEqual([status, refusal(error)]);
  if (status === 401) expect(res.headers.get('www-authenticate')).toBe('Bearer');
  expect(await json(`${api}/stocks`)).toEqual(before);
});

// Before the rate limit's test, which spends this address's budget.
test('a POST with no body at all (a browser sends Content-Length: 0) is one without arguments; the scheme "bearer" is any case; case and slash variants are no routes', async () => {
  const headers = { Authorization: `bEARER ${TOKEN}` };
  const bare = await fetch(`${api}/stop`, { method: 'POST', headers });
  expect(await answer(bare)).toEqual([200, { ok: true, running: false }]);
  // The README's `curl -X POST`: neither Content-Length nor Transfer-Encoding.
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  const head = `POST /api/stop HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}`;
  socket.write(`${head}\r\nConnection: close\r\n\r\n`);
  const reply = withDeadline(text(socket), 3_000, 'the curl answer');
  expect(await reply.finally(() => socket.destroy())).toMatch(/^HTTP\/1\.1 200 /);
  for (const op of ['START', 'stop/', 'Buy'])
    expect((await post(`${api}/${op}`, { name: 'Apple' }, auth)).status).toBe(404);
});

// Each from another X-Forwarded-For, which counts for nothing unless a proxy is trusted (below).
test('past the rate limit, 429 with Retry-After; the refusals are counted as a socket’s', async () => {
  const forwarded = (i: number) => ({ ...auth, 'X-Forwarded-For': `203.0.113.${i}` });
  const stops = Array.from({ length: 60 }, (_, i) => post(`${api}/stop`, {}, forwarded(i)));
  const answers = await Promise.all(stops);
  const limited = answers.find((res) => res.status === 429);
  expect(limited?.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
  // The table's three bad buy bodies, like a socket's bad arguments.
  const invalid = { op: 'buy', transport: 'http', result: 'rejected', reason: 'invalid' };
  expect(valueOf(await scrape(url), 'forkcast_ops_total', invalid)).toBe(3);
});

// nginx appends the address it saw; what a client wrote before it (forged here) counts for nothing.
test('behind a trusted proxy, each client it names (X-Forwarded-For) has a budget of its own', async () => {
  const { api: proxied } = await serve({ tickMs: 100, opsPerSecond: 1, trustProxy: 1 });
  const from = (forwarded: string) => post(`${proxied}/stop`, {}, { 'X-Forwarded-For': forwarded });
  const forged = [1, 2, 3, 4].map((i) => `198.51.100.${i}, 203.0.113.1`);
  const answers = await Promise.all(['203.0.113.9', ...forged].map(from));
  const [other, ...same] = answers.map((res) => res.status);
  // One budget for nginx's address would let one of the five through; the forged entries, four.
  expect([other, same.filter((status) => status === 200).length]).toEqual([200, 1]);
  expect(same).toContain(429);
});

test('without a control token, the shell lets every tab control; ops while the ticker cannot take them get 503, one that fails inside it 500', async () => {
  const app = createApp({ logger: pino({ level: 'silent' }), tickMs: 100 });
  apps.push(app);
  // Serving, but the ticker never opened: as while it restarts.
  await once(app.httpServer.listen(0, '127.0.0.1'), 'listening');
  const { port } = app.httpServer.address() as AddressInfo;
  const shell = await (await fetch(`http://127.0.0.1:${port}/`)).text();
  expect(shell).toMatch(/^<!DOCTYPE html>/);
  expect(shell).not.toContain('forkcast-control');
  const res = await post(`http://127.0.0.1:${port}/api/buy`, { name: 'Apple' });
  expect(await answer(res)).toEqual([503, refusal(/restarting/)]);
  jest.spyOn(app.ticker, 'stop').mockRejectedValueOnce(new Error('IPC channel closed'));
  const failed = await post(`http://127.0.0.1:${port}/api/stop`);
  expect(await answer(failed)).toEqual([500, refusal(/^internal error; the operation may not/)]);
});

// The sockets' side of a restart (a running state resumes ticking) is crash-kills.test.ts's. Two
// servers and a stream's reconnect delay: past jest's 5 s on a loaded machine (the waits have 10 s).
test('start, buy and stop answer as the socket acks do and the stream sees them in order, then the shutdown, which ends it cleanly; after a restart on the same state file, sockets are greeted with the saved history and opening, and the stream resumes by Last-Event-ID', async () => {
  const config = { tickMs: 100, stateFile: freshStateFile() };
  const first = await serve(config);
  let target = first.port;
  // The EventSource reconnects by itself, with its Last-Event-ID, to wherever `target` says.
  const events = listenToStream(`${first.api}/stream`, streams, (input, init) =>
    fetch(new URL(input).href.replace(/:\d+\//, `:${target}/`), init),
  );
  const streamed = (what: string, type: string, match = (_: Streamed) => true) =>
    events.waitFor((e) => e.type === type && match(e.data as Streamed), { ...WAIT, what });
  await streamed('the greeting', 'opening');
  const [a] = (await connectWelcomed(first.url, clients, 'a')) as [TestClient];
  const op = async (name: string, body?: unknown) =>
    (await post(`${first.api}/${name}`, body)).json();
  const [mark, greeted] = [a.events.mark, a.others.mark];
  expect(await op('start')).toEqual({ ok: true, running: true });
  await a.waitForUpdates(3, { from: mark });
  const opening = await a.next('opening', greeted);
  const ack = (await op('buy', { name: 'Apple' })) as { stock: { name: string; price: number } };
  await streamed('the bought price', 'update', (data) => data.stocks[0]!.price === ack.stock.price);
  expect(await op('stop', {})).toEqual({ ok: true, running: false });
  await streamed('Stopped', 'status', (data) => data.message === STATUS.stopped);
  await a.waitForStatus(STATUS.stopped, { from: mark });
  // close() ends streams; cut (as silent peers are, a second later) the read would reject.
  const ended = (await fetch(`${first.api}/stream`)).text();
  await first.app.close();
  await ended;
  await streamed('the goodbye', 'status', (data) => data.message === STATUS.shuttingDown);
  const last = a.lastUpdate();

  const second = await serve(config);
  const [b] = (await connectWelcomed(second.url, clients, 'b')) as [TestClient];
  // The updates broadcast before (not the greeting's seq 0), ending with the snapshot, stopped.
  const before = a.updates.filter(({ seq }) => seq > 0 && seq < last.seq);
  const history = await b.next('history');
  expect(history).toEqual({ updates: [...before, { ...last, running: false }] });
  // The API's snapshot and history are the sockets' payloads (its headers: http.test.ts's).
  expect(await json(`${second.api}/history`)).toEqual(history);
  expect(updateSchema.parse(await json(`${second.api}/stocks`))).toEqual(history.updates.at(-1));
  expect(await b.next('opening')).toEqual(opening);
  // Updates the stream missed while away, replayed from the history when it is back.
  await b.waitForUpdates(3, { from: (await b.start()).index });
  target = second.port;
  await streamed('updates after the restart', 'update', (data) => data.seq >= last.seq + 5);
  expectEveryStreamUpdate(events);
}, 15_000);

/** The event stream alone, on a loopback port, for a fake host; `stop` ends both. */
async function serveStream(...args: Parameters<typeof createEventStream>) {
  const stream = createEventStream(...args);
  const server = createServer((req, res) => void stream.connect(req, res)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const stop = (): void => {
    stream.close();
    server.close();
  };
  return { stream, port: (server.address() as AddressInfo).port, stop };
}

// History 10-12, snapshot 12: each Last-Event-ID's greeting, and an update greeted not sent twice.
test.each([
  ['', ['update 12', 'opening']],
  ['10', ['update 11', 'update 12', 'opening']],
  ['12', ['opening']],
  ['3', ['resync', 'update 12', 'opening']],
  ['13', ['resync', 'update 12', 'opening']],
  ['0xA', ['resync', 'update 12', 'opening']],
])('a stream with Last-Event-ID "%s" is greeted with %j', async (lastEventId, expected) => {
  const at = (seq: number): UpdatePayload => ({ stocks: [], running: true, seq, ts: seq });
  const history = [10, 11, 12].map(at);
  const host = { snapshot: () => at(12), greeting: () => ({ history, opening: at(10) }) };
  const { stream, port, stop } = await serveStream(host, pino({ level: 'silent' }));
  const headers = lastEventId ? { 'Last-Event-ID': lastEventId } : undefined;
  const res = await fetch(`http://127.0.0.1:${port}`, { headers });
  let [text, published] = ['', false];
  for await (const chunk of res.body!) {
    text += Buffer.from(chunk as Uint8Array).toString();
    if (text.includes('event:opening') && !published) {
      published = true;
      // As the broadcaster sends them: 12 (still going out as it was greeted), 13 twice, a status.
      for (const seq of [12, 13, 13]) stream.publish({ event: 'update', payload: at(seq) });
      stream.publish({ event: 'status', payload: { message: 'end', running: true } });
    }
    if (text.includes('event:status')) break;
  }
  const sent = [...text.matchAll(/^event:(\w+)\n(?:id:(\d+)\n)?/gm)];
  const names = sent.map(([, event, id]) => (id ? `${event} ${id}` : event));
  expect(names).toEqual([...expected, 'update 13', 'status']);
  const resync = `event:resync\ndata:${JSON.stringify({ lastEventId })}\n`;
  expect(text.includes(resync)).toBe(expected[0] === 'resync');
  stop();
});

test('a stream sends a heartbeat comment; a client that stops reading is dropped, not buffered', async () => {
  const { logger, lines } = capturingLogger();
  const update: UpdatePayload = { stocks: [], running: true, seq: 1, ts: 0 };
  const host = { snapshot: () => update, greeting: () => ({ history: [], opening: update }) };
  const options = { maxUnsent: 64 * 1024, heartbeatMs: 50 };
  const { stream, port, stop } = await serveStream(host, logger, options);
  const socket = connect(port, '127.0.0.1');
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
  stop();
});
