/** Security seen from outside; which Host names pass (a missing one too) is test/unit/hosts.test.ts's. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { SOCKET_PATH } from '../../protocol/events';
import { createApp, type AppConfig } from '../../server/app';
import { expectNoOps, expectSafeError, spyOnOps } from '../helpers/guards';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { grown, SEED, withBuy } from '../helpers/prices';
import { rawRequest as request, startServer, TestClient, type TestServer } from '../helpers/server';

const WATCH_ONLY =
  'this server needs a control token to start, stop or buy (handshake auth.token); you may watch';
const TOKEN = 'correct-horse-battery-staple';
const EVIL = 'http://evil.example';
const GOOD = 'http://good.example';
const POLLING_HANDSHAKE = `${SOCKET_PATH}/?EIO=4&transport=polling`;
const REFUSED_HOST = 'refused a request for a foreign host';
const OPENED = /^0\{"sid":/;

/** The real server in-process with its log captured. */
async function serve(options: Partial<AppConfig> = {}) {
  const { logger, lines } = capturingLogger();
  const forkcast = createApp({ logger, tickMs: 1_000, ...options });
  const { port } = await forkcast.listen(0, '127.0.0.1');
  return { forkcast, lines, port, url: `http://127.0.0.1:${port}` };
}

type Served = Awaited<ReturnType<typeof serve>>;
/** Defaults, with a client folder holding main.js so the shell renders the Angular root. */
let open: Served;
/** One extra origin and one extra domain. */
let listed: Served;
let guarded: TestServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  const clientDir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
  writeFileSync(path.join(clientDir, 'main.js'), '');
  [open, listed, guarded] = await Promise.all([
    serve({ clientDir }),
    serve({ allowedOrigins: [GOOD], allowedHosts: ['.example.test'] }),
    startServer({ tickMs: 1_000, controlToken: TOKEN }),
  ]);
});

afterEach(() => jest.restoreAllMocks());

afterAll(async () => {
  for (const client of clients) client.close();
  await Promise.all([open, listed, guarded].map((server) => server.forkcast.close()));
});

/** A WebSocket handshake: 101, or Engine.IO's refusal. */
const upgrade = (url: string, host: string, origin?: string) =>
  request(url, `${SOCKET_PATH}/?EIO=4&transport=websocket`, {
    host,
    ...(origin ? { origin } : {}),
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  });

describe('HTTP headers and errors', () => {
  test('GET / has a CSP whose style nonce is the one in the page, new on every response', async () => {
    const nonces = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${open.url}/`, { headers: { accept: 'text/html' } });
      const csp = (response.headers.get('content-security-policy') ?? '').split(/;\s*/);
      expect(csp).toEqual(
        expect.arrayContaining([
          "default-src 'self'",
          "script-src 'self'",
          "object-src 'none'",
          "frame-ancestors 'none'",
        ]),
      );
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      const style = /^style-src 'self' 'nonce-([A-Za-z0-9+/]{22}==)'$/;
      const nonce = csp.map((directive) => style.exec(directive)?.[1]).find(Boolean);
      // Angular puts it on the <style> tags it creates, reading it from ngCspNonce on its root.
      expect(/<app-root ngCspNonce="([^"]*)">/.exec(await response.text())?.[1]).toBe(
        nonce ?? 'none',
      );
      nonces.add(nonce ?? '');
    }
    expect(nonces.size).toBe(2);
  });

  test.each(
    [
      // Source and dotfiles stay outside the static roots; a traversal cannot reach them.
      ...['/package.json', '/.git/config', '/%2e%2e/package.json'],
      // A malformed escape reaches the error handler; serveClient is off.
      ...['/%', '/socket.io/socket.io.js'],
    ]
      .map((pathname) => `GET ${pathname}`)
      .concat(['POST /']),
  )('%.60s is a short 4xx that leaks no path and no stack', async (line) => {
    const [method = '', pathname = ''] = line.split(' ');
    const response = await fetch(`${open.url}${pathname}`, {
      method,
      headers: { accept: 'application/json, text/html' },
      ...(method === 'GET' ? {} : { body: '{"a":' }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const body = await response.text();
    expect(body.length).toBeLessThan(200);
    for (const leak of ['/work', 'node_modules', '.ts:', '.js:', '    at ', 'Error:', 'stack'])
      expect(body).not.toContain(leak);
  });
});

describe('Host allow-list (DNS rebinding)', () => {
  test('a foreign Host gets a short 403 on every route, logged at warn, and no Socket.IO session', async () => {
    const spies = spyOnOps(open.forkcast.ticker);
    const from = open.lines.mark;
    const foreign = [`evil.example:${open.port}`, `${'a'.repeat(8_000)}.evil.example`];
    for (const host of foreign) {
      // Rebinding: the Origin names the same foreign host, so comparing it with Host passes.
      const origin = host.length < 100 ? `http://${host}` : undefined;
      const headers = { host, ...(origin ? { origin } : {}) };
      const refusals: [string, string, string][] = [
        ...['/', '/healthz', '/metrics', '/favicon.svg', '/no/such/page'].map(
          (pathname): [string, string, string] => [pathname, 'text/html', 'Host not allowed'],
        ),
        ['/healthz', 'application/json', '{"error":"Host not allowed"}'],
        [POLLING_HANDSHAKE, '*/*', '{"code":4,"message":"Host not allowed"}'],
      ];
      for (const [pathname, accept, body] of refusals)
        expect(await request(open.url, pathname, { ...headers, accept })).toMatchObject({
          status: 403,
          body,
        });
      // Engine.IO answers every upgrade its allowRequest refuses with a 400.
      const refused = await upgrade(open.url, host, origin);
      expect([refused.status, refused.body.length < 100]).toEqual([400, true]);
    }
    expect(open.forkcast.io.engine.clientsCount).toBe(0);
    expectNoOps(spies);
    // Once per refusal (the logger is synchronous), at warn, a huge Host cut short.
    expect(
      linesWith(open.lines, REFUSED_HOST, from).map((line) => [line['level'], line['host']]),
    ).toEqual(
      foreign.flatMap((host) => Array<unknown[]>(8).fill([LEVEL.warn, host.slice(0, 100)])),
    );
  });

  // Which names pass is the unit test's; one that does gets every route, helmet's headers too.
  test('a built-in name is served on every route and both transports', async () => {
    const host = `localhost:${open.port}`;
    const origin = `http://${host}`;
    const from = open.lines.mark;
    for (const pathname of ['/', '/healthz', '/metrics', '/favicon.svg', '/no/such/page']) {
      const { status, headers } = await request(open.url, pathname, { host, origin });
      expect([
        pathname,
        status,
        headers['x-powered-by'],
        headers['x-content-type-options'],
      ]).toEqual([pathname, pathname === '/no/such/page' ? 404 : 200, undefined, 'nosniff']);
      expect(headers['content-security-policy']).toContain("script-src 'self'");
    }
    expect(await request(open.url, POLLING_HANDSHAKE, { host, origin })).toMatchObject({
      status: 200,
      body: expect.stringMatching(OPENED),
    });
    expect((await upgrade(open.url, host, origin)).status).toBe(101);
    expect(linesWith(open.lines, REFUSED_HOST, from)).toEqual([]);
    // Served, but the origin is still checked: it is not the Host's.
    expect((await request(open.url, POLLING_HANDSHAKE, { host, origin: EVIL })).body).toBe(
      '{"code":4,"message":"origin not allowed"}',
    );
  });
});

describe('the origin of every handshake', () => {
  const SELF = 'SELF';
  test.each<[string, boolean, () => Served, string | undefined]>([
    ['no Origin (not a browser)', true, () => open, undefined],
    ['the same origin', true, () => open, SELF],
    ['a foreign origin', false, () => open, EVIL],
    ['the opaque origin', false, () => open, 'null'],
    ['a longer name starting with its own', false, () => open, `${SELF}.evil.example`],
    ['the same host on another port', false, () => open, 'http://127.0.0.1'],
    ['a listed origin', true, () => listed, GOOD],
    ['an unlisted origin beside a listed one', false, () => listed, EVIL],
    ['a foreign origin to an allowed Host', false, () => listed, `${EVIL}.example.test`],
  ])('%s: accepted %s', async (_title, accepted, server, given) => {
    const { url } = server();
    const origin = given?.replace(SELF, url);
    const headers: Record<string, string> = {
      host: new URL(url).host,
      ...(origin ? { origin } : {}),
    };
    const polling = await request(url, POLLING_HANDSHAKE, headers);
    const ws = await upgrade(url, headers['host']!, origin);
    if (accepted) {
      expect([polling.status, ws.status]).toEqual([200, 101]);
    } else {
      expect(polling).toMatchObject({
        status: 403,
        body: '{"code":4,"message":"origin not allowed"}',
      });
      expect(ws.status).toBe(400);
    }
    // CORS headers only for a listed origin: a browser's page elsewhere may not read the answer.
    expect(polling.headers['access-control-allow-origin']).toBe(origin === GOOD ? GOOD : undefined);
  });

  test('a listed origin gets its CORS preflight answered', async () => {
    const preflight = await request(
      listed.url,
      POLLING_HANDSHAKE,
      { origin: GOOD, host: new URL(listed.url).host, 'access-control-request-method': 'POST' },
      'OPTIONS',
    );
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(GOOD);
  });
});

describe('control token', () => {
  async function join(name: string, auth?: Record<string, unknown>): Promise<TestClient> {
    const client = await TestClient.connect(guarded.url, name, auth ? { auth } : {});
    clients.push(client);
    await client.welcome();
    await client.sync();
    return client;
  }

  test.each([
    ['no token', undefined],
    ['a wrong token of the same length', { token: `${TOKEN.slice(0, -1)}x` }],
    ['the token with a character missing', { token: TOKEN.slice(0, -1) }],
    ['a token that is not a string', { token: [TOKEN] }],
  ])('a client with %s may watch but not start, stop or buy', async (_title, auth) => {
    const watcher = await join('watcher', auth);
    const before = guarded.forkcast.ticker.snapshot();
    const spies = spyOnOps(guarded.forkcast.ticker);
    for (const [event, ...args] of [['start'], ['stop'], ['buy', 'Apple']] as const) {
      const { ack } = await watcher.emitRaw(event, ...args);
      // It says why, and mentions the token without revealing it.
      expect(ack).toEqual({ ok: false, error: WATCH_ONLY });
      expectSafeError((ack as { error: unknown }).error);
    }
    expectNoOps(spies);
    expect(guarded.forkcast.ticker.snapshot()).toEqual(before);
  });

  // Refusals without an ack go to the sender alone as a status (hostile-input.test.ts).
  test('a watcher sees what a controller does, and never the token', async () => {
    const watcher = await join('watcher');
    const controller = await join('controller', { token: TOKEN });
    expect(guarded.forkcast.ticker.snapshot()).toMatchObject({ stocks: SEED, seq: 0 });
    const from = watcher.events.mark;
    expect((await controller.buy('Apple')).ack).toEqual({
      ok: true,
      stock: { name: 'Apple', price: grown(14.5) },
    });
    expect(await watcher.nextUpdate({ from })).toMatchObject({
      stocks: withBuy(SEED, 'Apple'),
      seq: 1,
    });
    expect(JSON.stringify(watcher.events.items)).not.toContain(TOKEN);
  });
});
