/** One real server for the file: HTTP answers, /metrics against what clients saw, the Host and
 * origin checks and the control token; the rules themselves are the unit tests'. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync } from 'node:zlib';

import { SOCKET_PATH } from '../../protocol/events';
import { createApp } from '../../server/app';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { priceOf } from '../helpers/prices';
import { scrape, sumOf, type Exposition } from '../helpers/prometheus';
import { withDeadline } from '../helpers/recorder';
import {
  expectContiguousSeq,
  rawRequest as request,
  spyOnOps,
  TestClient,
} from '../helpers/server';

const TOKEN = 'correct-horse-battery-staple';
const WATCH_ONLY =
  'this server needs a control token to start, stop or buy (Socket.IO: handshake auth.token; HTTP: Authorization: Bearer); you may watch';
const GOOD = 'http://good.example';
const EVIL = 'http://evil.example';
const POLLING = `${SOCKET_PATH}/?EIO=4&transport=polling`;
/** A production build as `ng build` leaves it: hashed entries, plus an unhashed licence file. */
const BUILD = {
  'main-AB12CD34.js': `export const prices = [${'{"name":"Apple","price":14.5},'.repeat(200)}];\n`,
  'polyfills-EF56GH78.js': '// zone.js\n',
  'styles-IJ90KL12.css': ':root { color-scheme: light dark; }\n',
  '3rdpartylicenses.txt': 'MIT\n',
};

const { logger, lines } = capturingLogger();
const clientDir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
for (const [name, text] of Object.entries(BUILD)) writeFileSync(path.join(clientDir, name), text);
const forkcast = createApp({
  logger,
  tickMs: 200,
  clientDir,
  allowedOrigins: [GOOD],
  allowedHosts: ['.example.test'],
  controlToken: TOKEN,
  // Low enough for one burst to reach it; each socket has its own budget.
  opsPerSecond: 3,
});
let url = '';
let port = 0;
/** Engine.IO sessions opened, by any transport. */
let sessions = 0;
forkcast.io.engine.on('connection', () => sessions++);
const clients: TestClient[] = [];

beforeAll(async () => {
  ({ port } = await forkcast.listen(0, '127.0.0.1'));
  url = `http://127.0.0.1:${port}`;
});

afterEach(() => jest.restoreAllMocks());

async function join(name: string, auth?: Record<string, unknown>): Promise<TestClient> {
  const client = await TestClient.connect(url, name, auth ? { auth } : {});
  clients.push(client);
  await client.welcome();
  await client.sync();
  return client;
}

afterAll(async () => {
  for (const client of clients) client.close();
  await forkcast.close();
  for (const client of clients) expectContiguousSeq(client);
  // Watchers see every controller's ops, never its token; nor does the log, wrong tokens included.
  const seen = [clients.map((client) => client.events.items), lines.items];
  expect(JSON.stringify(seen)).not.toContain(TOKEN);
  rmSync(clientDir, { recursive: true, force: true });
});

// First: the child has not ticked yet, and every client connected is this test's.
test('/healthz follows the ticker child; /metrics counts updates, deliveries, clients, ops and ack latencies as the clients saw them; an event flooder is cut off', async () => {
  const health = async (): Promise<unknown> => (await fetch(`${url}/healthz`)).json();
  const [uptime, pid] = [expect.any(Number), forkcast.ticker.pid];
  expect(await health()).toEqual({ ok: true, status: 'ok', running: false, seq: 0, uptime, pid });
  const details = { state: 'the state file cannot be written' };
  jest.spyOn(forkcast.ticker, 'health').mockReturnValueOnce({ status: 'degraded', details });
  const degraded = await fetch(`${url}/healthz`);
  const body = { ok: false, status: 'degraded', ...details, pid };
  expect([degraded.status, await degraded.json()]).toEqual([503, expect.objectContaining(body)]);
  const before = await scrape(url);
  const delta = (after: Exposition, name: string, labels = {}) =>
    sumOf(after, name, labels) - sumOf(before, name, labels);
  const token = { token: TOKEN };
  const [controller, watcher] = [await join('controller', token), await join('watcher')];
  expect(delta(await scrape(url), 'forkcast_connected_clients')).toBe(2);

  const started = await controller.start();
  expect(await health()).toMatchObject({ running: true });
  await controller.waitForUpdates(3, { from: started.index });
  expect((await controller.stop()).ack).toEqual({ ok: true, running: false });
  expect(await health()).toMatchObject({ running: false, seq: forkcast.ticker.snapshot().seq });
  // Each within its own budget of three a second; an unknown event costs none.
  const [buyer, flooder] = [await join('buyer', token), await join('flooder', token)];
  const all = [controller, watcher, buyer, flooder];
  const [mark, buysSent] = [controller.events.mark, performance.now()];
  const { ack } = await buyer.buy('Apple');
  // The price it was acked with reaches the others (what a buy does to prices is the model's).
  const bought = priceOf((await controller.nextUpdate({ from: mark })).stocks, 'Apple');
  expect(ack).toEqual({ ok: true, stock: { name: 'Apple', price: bought } });
  expect((await buyer.emitRaw('buy', 'Nokia')).ack).toMatchObject({ ok: false });
  expect((await watcher.buy('Apple')).ack).toMatchObject({ ok: false });
  const buysSeconds = (performance.now() - buysSent) / 1_000;
  // Four at once against a budget of three a second: the last is refused; the buyer has its own.
  const stops = jest.spyOn(forkcast.ticker, 'stop');
  const burst = await Promise.all([...[1, 2, 3, 4].map(() => flooder.stop()), buyer.stop()]);
  const error =
    'too many requests: at most 3 start/stop/buy per second per connection (HTTP: per address)';
  const ok = { ok: true, running: false };
  const limited = { ok: false, error };
  expect(burst.map(({ ack }) => ack)).toEqual([ok, ok, ok, limited, ok]);
  expect(stops).toHaveBeenCalledTimes(4);
  for (const client of all) await client.sync();

  const after = await scrape(url);
  // Less each client's welcome snapshot, which is not a broadcast.
  const seen = all.map((client) => client.updates.length - 1);
  expect(delta(after, 'forkcast_updates_broadcast_total')).toBe(seen[0]);
  expect(delta(after, 'forkcast_update_deliveries_total')).toBe(seen.reduce((a, b) => a + b));
  const ops = (op: string, result: string, reason?: string) =>
    delta(after, 'forkcast_ops_total', { op, result, ...(reason ? { reason } : {}) });
  expect([
    ops('start', 'ok'),
    ops('stop', 'ok'),
    ops('stop', 'rejected', 'rate_limited'),
    ops('buy', 'ok'),
    ops('buy', 'rejected', 'invalid'),
    ops('buy', 'rejected', 'forbidden'),
    // Each client's two sync()s (on joining and above): an unknown event.
    ops('unknown', 'rejected', 'invalid'),
  ]).toEqual([1, 5, 1, 1, 1, 1, 2 * all.length]);
  // One ack observation per answer, in seconds: no more than the three buys' round trips took.
  expect(sumOf(after, 'forkcast_op_ack_seconds_count')).toBe(sumOf(after, 'forkcast_ops_total'));
  expect(delta(after, 'forkcast_op_ack_seconds_count', { op: 'stop' })).toBe(6);
  const buySeconds = delta(after, 'forkcast_op_ack_seconds_sum', { op: 'buy' });
  expect([buySeconds > 0, buySeconds < buysSeconds]).toEqual([true, true]);

  // Ten times its op budget in events of any kind: cut off; the others stay, and the gauge says so.
  const cut = new Promise((resolve) => flooder.socket.once('disconnect', resolve));
  for (let i = 0; i < 40; i++) flooder.raw.emit('no-such-event');
  expect(await withDeadline(cut, 3_000, 'the flooder cut off')).toBe('io server disconnect');
  for (const client of [controller, watcher, buyer]) await client.sync();
  expect(delta(await scrape(url), 'forkcast_connected_clients')).toBe(3);
});

const YEAR = 'public, max-age=31536000, immutable';
// Hashed names never change content; the rest, the shell too, is revalidated: deploys show at once.
test.each([
  ['/main-AB12CD34.js', YEAR, /^text\/javascript/, 'export'],
  ['/styles-IJ90KL12.css', YEAR, /^text\/css/, ':root'],
  ['/', 'no-cache', /^text\/html/, '<!DOCTYPE html>'],
  ['/3rdpartylicenses.txt', 'no-cache', /^text\/plain/, 'MIT'],
  ['/favicon.svg', 'no-cache', /^image\/svg\+xml/, '<svg'],
  ['/favicon.ico', 'no-cache', /^image\/(vnd\.microsoft\.icon|x-icon)$/, '\0\0\x01\0'],
  ['/apple-touch-icon.png', 'no-cache', /^image\/png$/, '\x89PNG'],
  ['/api/stocks', 'no-store', /^application\/json/, '{"stocks":'],
  ['/api/history', 'no-store', /^application\/json/, '{"updates":'],
  // The contracts, as the README links them (their content: contracts.test.ts).
  ['/api/openapi.json', 'public, max-age=0', /^application\/json/, '{\n  "openapi": "3.1.0"'],
  ['/api/asyncapi.json', 'public, max-age=0', /^application\/json/, '{\n  "asyncapi": "3.0.0"'],
])('%s: Cache-Control %s, type %s, and helmet’s nosniff', async (pathname, cache, type, start) => {
  const response = await fetch(`${url}${pathname}`);
  const head = Buffer.from(await response.arrayBuffer()).subarray(0, start.length);
  const header = (name: string) => response.headers.get(name);
  const got = [header('cache-control'), header('content-type'), header('x-content-type-options')];
  const wanted = [cache, expect.stringMatching(type), 'nosniff'];
  expect([response.status, ...got, head.toString('latin1')]).toEqual([200, ...wanted, start]);
});

// Nothing outside the static roots (source, dotfiles, a traversal), no stack, no path.
test.each([
  ['GET', '/package.json', '*/*', 404, '{"ok":false,"error":"Not found"}'],
  ['GET', '/.git/config', '*/*', 404, '{"ok":false,"error":"Not found"}'],
  ['GET', '/%2e%2e/package.json', '*/*', 404, '{"ok":false,"error":"Not found"}'],
  ['GET', '/%', '*/*', 404, '{"ok":false,"error":"Not found"}'],
  ['POST', '/', '*/*', 404, '{"ok":false,"error":"Not found"}'],
  ['GET', '/no/such/page', 'application/json', 404, '{"ok":false,"error":"Not found"}'],
  ['GET', '/no/such/page', 'text/html', 404, 'Not found'],
  ['HEAD', '/api/stream', 'text/event-stream', 200, ''],
  // serveClient is off.
  ['GET', '/socket.io/socket.io.js', '*/*', 400, '{"code":0,"message":"Transport unknown"}'],
])('%s %s accepting %s: %i %s', async (method, pathname, accept, status, body) => {
  expect(await request(url, pathname, { accept }, method)).toMatchObject({ status, body });
});

test('a route that throws: 500 with a generic message, the error only in the log, at error level', async () => {
  const from = lines.mark;
  jest.spyOn(forkcast.ticker, 'snapshot').mockImplementationOnce(() => {
    throw new Error('the snapshot broke at /srv/forkcast');
  });
  const res = await fetch(`${url}/api/stocks`);
  const body = { ok: false, error: 'Internal server error' };
  expect([res.status, await res.json()]).toEqual([500, body]);
  const logged = linesWith(lines, 'request failed', from).map((l) => [l['level'], l['url']]);
  expect(logged).toEqual([[LEVEL.error, '/api/stocks']]);
});

// Helmet's other headers, the same on every route (nosniff shows it on all: above), on these two.
const CSP = ["default-src 'self'", "script-src 'self'", "object-src 'none'"];
const STYLE_NONCE = /^style-src 'self' 'nonce-[A-Za-z0-9+/]{22}=='$/;
test.each([
  ['br', brotliDecompressSync],
  ['identity', (body: Buffer) => body],
])(
  '%s: the bundle and the shell arrive encoded so, with helmet’s headers; the shell links the build and a new style nonce',
  async (encoding, decode) => {
    const get = (pathname: string) => request(url, pathname, { 'accept-encoding': encoding });
    const [bundle, shell] = [await get('/main-AB12CD34.js'), await get('/')];
    const file = Buffer.from(BUILD['main-AB12CD34.js']);
    const compressed = encoding === 'identity' ? undefined : encoding;
    for (const { headers } of [bundle, shell]) {
      const { vary, 'content-encoding': encoded, 'x-powered-by': poweredBy } = headers;
      const got = [encoded, vary, poweredBy, headers['x-frame-options']];
      const accepted = expect.stringMatching(/accept-encoding/i);
      expect(got).toEqual([compressed, accepted, undefined, 'SAMEORIGIN']);
      const csp = String(headers['content-security-policy']);
      const directives = [...CSP, "frame-ancestors 'none'", expect.stringMatching(STYLE_NONCE)];
      expect(csp.split(/;\s*/)).toEqual(expect.arrayContaining(directives));
      // Served over plain HTTP on a LAN address, upgraded requests would fail to load.
      expect(csp).not.toContain('upgrade-insecure-requests');
    }
    expect(decode(bundle.raw)).toEqual(file);
    if (compressed) expect(bundle.raw.length).toBeLessThan(file.length / 4);
    // Angular reads the nonce for its <style> tags from ngCspNonce; each response has its own.
    const [other, nonce] = [bundle, shell].map(
      ({ headers }) => /'nonce-([^']+)'/.exec(String(headers['content-security-policy']))?.[1],
    );
    expect(nonce).not.toBe(other);
    const page = decode(shell.raw).toString('utf8');
    expect(page).toContain(`<app-root ngCspNonce="${nonce}">`);
    // This server has a control token: a tab without one only watches.
    expect(page).toContain('<meta name="forkcast-control" content="token">');
    // This server's build; how the shell links each entry is shell.test.ts's.
    expect(page).toContain('src="/main-AB12CD34.js"');
  },
);

/** A WebSocket handshake: 101, or Engine.IO's refusal. */
const WS = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13' };
const upgrade = (host: string, origin?: string) =>
  request(url, `${SOCKET_PATH}/?EIO=4&transport=websocket`, {
    ...{ host, ...WS, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    ...(origin ? { origin } : {}),
  });

// DNS rebinding: the Origin names the same host, so comparing it with Host alone would pass.
test.each([
  ['a built-in name', true, 'localhost'],
  ['a foreign name', false, 'evil.example'],
  ['a huge foreign name', false, `${'a'.repeat(8_000)}.evil.example`],
])(
  'a request for %s: served %s on every route and transport, else a short 403 logged at warn',
  async (_title, served, name) => {
    const host = `${name}:${port}`;
    const origin = host.length < 100 ? `http://${host}` : undefined;
    const headers = { host, ...(origin ? { origin } : {}) };
    const [from, before] = [lines.mark, sessions];
    const refused = (body: string) => ({ status: 403, body });
    const pages = ['/', '/healthz', '/api/stocks', '/metrics', '/favicon.svg', '/no/such/page'];
    for (const pathname of pages) {
      const status = pathname === '/no/such/page' ? 404 : 200;
      const page = await request(url, pathname, { ...headers, accept: 'text/html' });
      expect(page).toMatchObject(served ? { status } : refused('Host not allowed'));
    }
    const json = await request(url, '/healthz', { ...headers, accept: 'application/json' });
    expect(json).toMatchObject(
      served ? { status: 200 } : refused('{"ok":false,"error":"Host not allowed"}'),
    );
    const opened = { status: 200, body: expect.stringMatching(/^0\{"sid":/) };
    const engineRefused = refused('{"code":4,"message":"Host not allowed"}');
    expect(await request(url, POLLING, headers)).toMatchObject(served ? opened : engineRefused);
    // Engine.IO answers every upgrade its allowRequest refuses with a 400.
    const ws = await upgrade(host, origin);
    expect([ws.status, ws.body.length < 100]).toEqual([served ? 101 : 400, true]);
    expect(sessions - before).toBe(served ? 2 : 0);
    // Once per refusal (the logger is synchronous), a huge Host cut short.
    const logged = linesWith(lines, 'refused a request for a foreign host', from);
    const warned = Array<unknown[]>(served ? 0 : 9).fill([LEVEL.warn, host.slice(0, 100)]);
    expect(logged.map((line) => [line['level'], line['host']])).toEqual(warned);
  },
);

const SELF = 'SELF';
const PREFLIGHT = { 'access-control-request-method': 'POST' };
test.each<[string, boolean, string | undefined]>([
  ['no Origin (not a browser)', true, undefined],
  ['the same origin', true, SELF],
  ['a listed origin', true, GOOD],
  ['a foreign origin', false, EVIL],
  ['a foreign origin whose name is an allowed Host', false, `${EVIL}.example.test`],
])('a handshake with %s: accepted %s', async (_title, accepted, given) => {
  const origin = given?.replace(SELF, url);
  const headers = { host: `127.0.0.1:${port}`, ...(origin ? { origin } : {}) };
  // Long-polling, the WebSocket and /api (any page may POST a form): the same check.
  const polling = await request(url, POLLING, headers);
  const api = await request(url, '/api/stocks', headers);
  const ws = await upgrade(headers.host, origin);
  const statuses = [polling.status, api.status, ws.status];
  expect(statuses).toEqual(accepted ? [200, 200, 101] : [403, 403, 400]);
  if (!accepted)
    expect([polling.body, api.body]).toEqual([
      '{"code":4,"message":"origin not allowed"}',
      '{"ok":false,"error":"origin not allowed"}',
    ]);
  // CORS headers only for a listed origin: a browser's page elsewhere may not read the answer.
  const preflights = [POLLING, '/api/buy'].map((pathname) =>
    request(url, pathname, { ...headers, ...PREFLIGHT }, 'OPTIONS'),
  );
  const answers = [polling, api, ...(await Promise.all(preflights))];
  const cors = origin === GOOD ? GOOD : undefined;
  const allowed = answers.map((answer) => answer.headers['access-control-allow-origin']);
  expect(allowed).toEqual(Array(4).fill(cors));
  // So that such a page can read when to retry a 429.
  expect(api.headers['access-control-expose-headers']).toBe('Retry-After');
  expect(answers.slice(2).map((preflight) => preflight.status)).toEqual([204, 204]);
});

test.each([
  ['a wrong token of the same length', { token: `${TOKEN.slice(0, -1)}x` }],
  ['the token with a character missing', { token: TOKEN.slice(0, -1) }],
  ['a token that is not a string', { token: [TOKEN] }],
])('a client with %s may watch but not start, stop or buy', async (_title, auth) => {
  const watcher = await join('watcher', auth);
  const expectNoOps = spyOnOps(forkcast.ticker);
  for (const [event, ...args] of [['start'], ['stop'], ['buy', 'Apple']] as const) {
    const { ack } = await watcher.emitRaw(event, ...args);
    expect(ack).toEqual({ ok: false, error: WATCH_ONLY });
  }
  expectNoOps();
});
