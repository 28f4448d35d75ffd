/**
 * The server's security settings seen from outside: helmet's headers and the CSP nonce that
 * Angular needs, errors that leak nothing, cross-origin connections refused unless listed, the
 * control token that turns unauthenticated clients into watchers, and the Host allow-list that
 * keeps DNS-rebound pages out.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { io, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';

import { SOCKET_PATH, STATUS } from '../../protocol/events';
import { createApp, type ForkcastApp } from '../../server/app';
import { expectNoOps, expectSafeError, spyOnOps } from '../helpers/guards';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { grown, SEED, withBuy } from '../helpers/prices';
import { withDeadline } from '../helpers/recorder';
import { killServers, spawnServer } from '../helpers/server-process';
import { isStatus, startServer, TestClient, type TestServer } from '../helpers/server';

const WATCH_ONLY =
  'this server needs a control token to start, stop or buy (handshake auth.token); you may watch';
/** Things that must never appear in what the server tells a client. */
const LEAKS = ['/work', 'node_modules', '.ts:', '.js:', '    at ', 'Error:', 'stack'];

let server: TestServer | undefined;
let clients: TestClient[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const client of clients) client.close();
  clients = [];
  await server?.forkcast.close();
  server = undefined;
  await killServers();
});

async function start(options: Parameters<typeof startServer>[0]): Promise<TestServer> {
  server = await startServer(options);
  return server;
}

async function join(
  url: string,
  name: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
): Promise<TestClient> {
  const client = await TestClient.connect(url, name, options);
  clients.push(client);
  await client.welcome();
  await client.sync();
  return client;
}

/** A client folder with a main.js, so the shell renders the Angular root (and its nonce). */
function fakeClientDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
  writeFileSync(path.join(dir, 'main.js'), '');
  return dir;
}

function directives(csp: string): Map<string, string[]> {
  return new Map(
    csp.split(';').map((directive) => {
      const [name = '', ...sources] = directive.trim().split(/\s+/);
      return [name, sources];
    }),
  );
}

describe('HTTP headers and errors', () => {
  let shared: TestServer;

  beforeAll(async () => {
    shared = await startServer({ tickMs: 1_000, clientDir: fakeClientDir() });
  });

  afterAll(async () => {
    await shared.forkcast.close();
  });

  test('GET / has a CSP whose style nonce is the one in the page, new on every response', async () => {
    const nonces: string[] = [];
    for (let i = 0; i < 2; i++) {
      const response = await fetch(`${shared.url}/`, { headers: { accept: 'text/html' } });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      const csp = directives(response.headers.get('content-security-policy') ?? '');
      expect(csp.get('default-src')).toEqual(["'self'"]);
      expect(csp.get('script-src')).toEqual(["'self'"]);
      expect(csp.get('object-src')).toEqual(["'none'"]);
      expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
      const styleSrc = csp.get('style-src') ?? [];
      expect(styleSrc).toHaveLength(2);
      expect(styleSrc[0]).toBe("'self'");
      const nonce = /^'nonce-([A-Za-z0-9+/]{22}==)'$/.exec(styleSrc[1] ?? '')?.[1];
      expect(nonce).toBeDefined();

      const html = await response.text();
      // Angular reads the nonce for the <style> tags it creates from ngCspNonce on its root.
      const attribute = /<app-root ngCspNonce="([^"]*)">/.exec(html)?.[1];
      expect(attribute).toBe(nonce);
      nonces.push(nonce ?? '');
    }
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  test('the security headers are on every Express response, the 404s included', async () => {
    for (const pathname of ['/healthz', '/favicon.svg', '/main.js', '/no/such/page']) {
      const response = await fetch(`${shared.url}${pathname}`);
      expect(response.headers.get('x-powered-by')).toBeNull();
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    }
  });

  test.each(
    [
      { method: 'GET', path: '/package.json' },
      { method: 'GET', path: '/server/app.ts' },
      { method: 'GET', path: '/dist/server/main.js' },
      { method: 'GET', path: '/views/index.pug' },
      { method: 'GET', path: '/.git/config' },
      { method: 'GET', path: '/..%2f..%2f..%2fetc%2fpasswd' },
      { method: 'GET', path: '/%' },
      { method: 'GET', path: '/%E0%A4%A' },
      { method: 'GET', path: '/%00' },
      { method: 'GET', path: '/%2e%2e/package.json' },
      { method: 'GET', path: `/${'a'.repeat(5_000)}` },
      { method: 'GET', path: '/favicon.svg/' },
      { method: 'GET', path: '/favicon.svg%00.js' },
      { method: 'POST', path: '/' },
      { method: 'PUT', path: '/healthz' },
      { method: 'DELETE', path: '/' },
      { method: 'PATCH', path: '/favicon.svg' },
      { method: 'GET', path: '/socket.io/socket.io.js' },
      { method: 'GET', path: '/socket.io/?EIO=4&transport=polling&sid=%00' },
    ].map((request) => ({
      ...request,
      title: `${request.method} ${request.path.length > 60 ? `${request.path.slice(0, 12)}... (${request.path.length} characters)` : request.path}`,
    })),
  )('$title is a 4xx that leaks no path and no stack', async ({ method, path: pathname }) => {
    const response = await fetch(`${shared.url}${pathname}`, {
      method,
      headers: { accept: 'application/json, text/html' },
      ...(method === 'GET' ? {} : { body: '{"a":' }),
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    const body = await response.text();
    expect(body.length).toBeLessThan(200);
    for (const leak of LEAKS) expect(body).not.toContain(leak);
  });
});

/** Tries to connect and resolves with the connect_error message (rejects if it connects). */
async function refusal(
  url: string,
  options: Partial<ManagerOptions & SocketOptions>,
): Promise<string> {
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  try {
    return await withDeadline(
      new Promise<string>((resolve, reject) => {
        socket.once('connect', () => reject(new Error('connected, but should have been refused')));
        socket.once('connect_error', (error) => resolve(error.message));
      }),
      3_000,
      'the connection to be refused',
    );
  } finally {
    socket.disconnect();
  }
}

const TRANSPORTS = [['websocket'], ['polling']] as const;
/** How socket.io-client reports a refused handshake on each transport. */
const REFUSED = { websocket: 'websocket error', polling: 'xhr poll error' } as const;
const EVIL = 'http://evil.example';
const GOOD = 'http://good.example';

describe('cross-origin connections', () => {
  test.each(TRANSPORTS)(
    'closed by default (%s): a foreign Origin is refused; the same origin and none are accepted',
    async (transport) => {
      const { url, forkcast } = await start({ tickMs: 1_000 });
      for (const origin of [EVIL, 'null', `${url}.evil.example`, 'http://127.0.0.1']) {
        expect(await refusal(url, { transports: [transport], extraHeaders: { origin } })).toBe(
          REFUSED[transport],
        );
      }
      expect(forkcast.io.sockets.sockets.size).toBe(0);
      const same = await join(url, 'same-origin', {
        transports: [transport],
        extraHeaders: { origin: url },
      });
      const none = await join(url, 'no-origin', { transports: [transport] });
      expect(forkcast.io.sockets.sockets.size).toBe(2);
      for (const client of [same, none]) {
        expect(await client.buy('Apple')).toMatchObject({ ack: { ok: true } });
      }
    },
  );

  test('closed by default: the polling handshake from a foreign Origin is a 403 without CORS headers', async () => {
    const { url } = await start({ tickMs: 1_000 });
    const endpoint = `${url}/socket.io/?EIO=4&transport=polling`;
    const foreign = await fetch(endpoint, { headers: { origin: EVIL } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(await foreign.json()).toEqual({ code: 4, message: 'origin not allowed' });
    const same = await fetch(endpoint, { headers: { origin: url } });
    expect(same.status).toBe(200);
    expect(same.headers.get('access-control-allow-origin')).toBeNull();
  });

  test.each(TRANSPORTS)(
    'with allowedOrigins (%s): the listed origin is accepted, others still refused',
    async (transport) => {
      const { url } = await start({ tickMs: 1_000, allowedOrigins: [GOOD] });
      const good = await join(url, 'good', {
        transports: [transport],
        extraHeaders: { origin: GOOD },
      });
      expect(await good.buy('Apple')).toMatchObject({ ack: { ok: true } });
      expect(await refusal(url, { transports: [transport], extraHeaders: { origin: EVIL } })).toBe(
        REFUSED[transport],
      );
    },
  );

  test('with allowedOrigins: polling answers carry access-control-allow-origin for that origin only', async () => {
    const { url } = await start({ tickMs: 1_000, allowedOrigins: [GOOD] });
    const endpoint = `${url}/socket.io/?EIO=4&transport=polling`;
    const good = await fetch(endpoint, { headers: { origin: GOOD } });
    expect(good.status).toBe(200);
    expect(good.headers.get('access-control-allow-origin')).toBe(GOOD);
    expect(await good.text()).toMatch(/^0\{"sid":/);
    const preflight = await fetch(endpoint, {
      method: 'OPTIONS',
      headers: { origin: GOOD, 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(GOOD);
    const evil = await fetch(endpoint, { headers: { origin: EVIL } });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('control token', () => {
  const TOKEN = 'correct-horse-battery-staple';
  let shared: TestServer;

  beforeAll(async () => {
    shared = await startServer({ tickMs: 1_000, controlToken: TOKEN });
  });

  afterAll(async () => {
    await shared.forkcast.close();
  });

  test.each([
    ['no token', {}],
    ['a wrong token', { auth: { token: 'wrong-horse-battery-staple' } }],
    ['the token with a character missing', { auth: { token: TOKEN.slice(0, -1) } }],
    ['the token with a character added', { auth: { token: `${TOKEN}x` } }],
    ['a token that is not a string', { auth: { token: [TOKEN] } }],
  ])('a client with %s may watch but not start, stop or buy', async (_title, options) => {
    const watcher = await join(shared.url, 'watcher', options);
    const before = shared.forkcast.ticker.snapshot();
    const spies = spyOnOps(shared.forkcast.ticker);
    // The refusal says why, and mentions the token without revealing it.
    for (const [event, args] of [
      ['start', []],
      ['stop', []],
      ['buy', ['Apple']],
    ] as const) {
      const { ack } = await watcher.emitRaw(event, ...args);
      expect(ack).toEqual({ ok: false, error: WATCH_ONLY });
      expectSafeError((ack as { error: unknown }).error);
    }
    expectNoOps(spies);
    expect(shared.forkcast.ticker.snapshot()).toEqual(before);
  });

  test('a refusal without an ack goes to the watcher alone, who still sees what a controller does', async () => {
    const watcher = await join(shared.url, 'watcher');
    const controller = await join(shared.url, 'controller', { auth: { token: TOKEN } });
    const before = shared.forkcast.ticker.snapshot();
    expect(before).toEqual({ stocks: SEED, running: false, seq: 0, ts: expect.any(Number) });
    const marks = [watcher.events.mark, controller.events.mark];
    watcher.raw.emit('buy', 'Microsoft');
    const status = await watcher.events.waitFor(isStatus, {
      from: marks[0],
      timeoutMs: 3_000,
      what: 'watcher: the refusal status',
    });
    expect(status.status).toEqual({ message: `buy rejected: ${WATCH_ONLY}`, running: false });
    await controller.sync();
    expect(controller.events.since(marks[1] ?? 0)).toEqual([]);
    expect(shared.forkcast.ticker.snapshot()).toEqual(before);
    expect(JSON.stringify(watcher.events.items)).not.toContain(TOKEN);

    const bought = await controller.buy('Apple');
    expect(bought.ack).toEqual({ ok: true, stock: { name: 'Apple', price: grown(14.5) } });
    expect(await watcher.nextUpdate({ from: marks[0] ?? 0 })).toEqual({
      stocks: withBuy(SEED, 'Apple'),
      running: false,
      seq: 1,
      ts: expect.any(Number),
    });
    expect((await controller.start()).ack).toEqual({ ok: true, running: true });
    await watcher.waitForStatus(STATUS.started, { from: marks[0] ?? 0 });
    await watcher.nextUpdate({ from: watcher.events.mark });
    expect((await controller.stop()).ack).toEqual({ ok: true, running: false });
    await watcher.waitForStatus(STATUS.stopped, { from: marks[0] ?? 0 });
  });
});

interface Answer {
  status: number;
  body: string;
}

/** A GET with any Host header (fetch does not let a caller choose it), on a fresh connection. */
function getWithHost(
  url: string,
  pathname: string,
  host: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const answer = new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: new URL(url).port, path: pathname, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    for (const [name, value] of Object.entries({ ...headers, host })) req.setHeader(name, value);
    req.on('error', reject).end();
  });
  return withDeadline(answer, 3_000, `GET ${pathname} for Host ${host.slice(0, 40)}`);
}

/**
 * A WebSocket handshake on Engine.IO's endpoint with this Host: 101 and the Engine.IO open
 * packet when accepted, otherwise the status and body the server answered with.
 */
function upgradeWithHost(url: string, host: string, origin?: string): Promise<Answer> {
  const ws = new WebSocket(
    `${url.replace(/^http/, 'ws')}${SOCKET_PATH}/?EIO=4&transport=websocket`,
    {
      headers: { host, ...(origin ? { origin } : {}) },
    },
  );
  const answer = new Promise<Answer>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve({ status: 101, body: data.toString('utf8') }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
  return withDeadline(answer, 3_000, `the upgrade for Host ${host.slice(0, 40)}`).finally(() =>
    ws.terminate(),
  );
}

const POLLING_HANDSHAKE = `${SOCKET_PATH}/?EIO=4&transport=polling`;
const REFUSED_MESSAGE = 'refused a request for a foreign host';

describe('Host allow-list (DNS rebinding)', () => {
  const apps: ForkcastApp[] = [];

  afterAll(async () => {
    await Promise.all(apps.map((app) => app.close()));
  });

  /** The real server in-process, with its log captured and the given extra host names. */
  async function startWithHosts(allowedHosts?: readonly string[]) {
    const { logger, lines } = capturingLogger();
    const app = createApp({ logger, tickMs: 1_000, ...(allowedHosts ? { allowedHosts } : {}) });
    apps.push(app);
    const { port } = await app.listen(0, '127.0.0.1');
    return { forkcast: app, lines, port, url: `http://127.0.0.1:${port}` };
  }

  let shared: Awaited<ReturnType<typeof startWithHosts>>;

  beforeAll(async () => {
    shared = await startWithHosts();
  });

  // Which names count as foreign is test/unit/hosts.test.ts's; here, that every route refuses.
  test('a foreign Host gets a short 403 on every route, logged at warn, and no Socket.IO session', async () => {
    const { forkcast, lines, port, url } = shared;
    const spies = spyOnOps(forkcast.ticker);
    const from = lines.mark;
    const foreign = [`evil.example:${port}`, `localhost.evil.example:${port}`];
    for (const host of foreign) {
      // The rebinding case: the page's Origin names the same foreign host, so an Origin check
      // that compares it with Host passes.
      const headers = { origin: `http://${host}` };
      for (const pathname of ['/', '/healthz', '/metrics', '/favicon.svg', '/no/such/page']) {
        expect(await getWithHost(url, pathname, host, { ...headers, accept: 'text/html' })).toEqual(
          { status: 403, body: 'Host not allowed' },
        );
      }
      expect(
        await getWithHost(url, '/healthz', host, { ...headers, accept: 'application/json' }),
      ).toEqual({ status: 403, body: '{"error":"Host not allowed"}' });
      expect(await getWithHost(url, POLLING_HANDSHAKE, host, headers)).toEqual({
        status: 403,
        body: '{"code":4,"message":"Host not allowed"}',
      });
      // Engine.IO answers every upgrade its allowRequest refuses with a 400.
      expect(await upgradeWithHost(url, host, headers.origin)).toMatchObject({ status: 400 });
    }
    expect(forkcast.io.engine.clientsCount).toBe(0);
    expectNoOps(spies);

    // Logged once per refusal (the logger is synchronous), at warn.
    const refusals = linesWith(lines, REFUSED_MESSAGE, from);
    expect(refusals.map((line) => [line['level'], line['host']])).toEqual(
      foreign.flatMap((host) => Array<unknown[]>(8).fill([LEVEL.warn, host])),
    );
  });

  test('a huge foreign Host is neither echoed nor logged in full', async () => {
    const { lines, url } = shared;
    const host = `${'a'.repeat(8_000)}.evil.example`;
    const from = lines.mark;
    for (const answer of [
      await getWithHost(url, '/', host),
      await getWithHost(url, POLLING_HANDSHAKE, host),
      await upgradeWithHost(url, host),
    ]) {
      expect([400, 403]).toContain(answer.status);
      expect(answer.body.length).toBeLessThan(100);
    }
    const logged = linesWith(lines, REFUSED_MESSAGE, from).map((line) => line['host']);
    expect(logged).toEqual(Array<string>(3).fill('a'.repeat(100)));
  });

  test('a request without a Host header is refused', async () => {
    const { forkcast, port } = shared;
    // HTTP/1.0 may leave Host out (Node itself answers 400 to HTTP/1.1 without one).
    const socket = createConnection({ host: '127.0.0.1', port });
    let response = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (response += chunk));
    const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.end(`GET ${POLLING_HANDSHAKE} HTTP/1.0\r\n\r\n`);
    await withDeadline(ended, 3_000, 'the answer to a request without Host');
    expect(response).toMatch(/^HTTP\/1\.[01] 403 /);
    expect(response).toContain('Host not allowed');
    expect(forkcast.io.engine.clientsCount).toBe(0);
  });

  test('a loopback Host is served, with any port, on every route and both transports', async () => {
    const { forkcast, lines, port, url } = shared;
    const from = lines.mark;
    for (const host of [`localhost:${port}`, 'localhost', '[::1]:4200']) {
      const origin = { origin: `http://${host}` };
      for (const pathname of ['/', '/healthz', '/metrics', '/favicon.svg']) {
        expect((await getWithHost(url, pathname, host, origin)).status).toBe(200);
      }
      const handshake = await getWithHost(url, POLLING_HANDSHAKE, host, origin);
      expect(handshake.status).toBe(200);
      expect(handshake.body).toMatch(/^0\{"sid":/);
      const upgrade = await upgradeWithHost(url, host, origin.origin);
      expect(upgrade.status).toBe(101);
      expect(upgrade.body).toMatch(/^0\{"sid":/);
    }
    // Each accepted handshake opened a session (the polling ones wait for their ping timeout):
    // the count that stays 0 above is live.
    expect(forkcast.io.engine.clientsCount).toBeGreaterThanOrEqual(3);
    expect(linesWith(lines, REFUSED_MESSAGE, from)).toEqual([]);
  });

  test('the origin check still runs for an allowed Host', async () => {
    const { forkcast, port, url } = await startWithHosts(['.example.test']);
    const host = `app.example.test:${port}`;
    expect(await getWithHost(url, POLLING_HANDSHAKE, host, { origin: EVIL })).toEqual({
      status: 403,
      body: '{"code":4,"message":"origin not allowed"}',
    });
    expect(forkcast.io.engine.clientsCount).toBe(0);
  });
});

test('main.ts wires CONTROL_TOKEN, ALLOWED_HOSTS and CLIENT_DEV_SERVER from the environment', async () => {
  const TOKEN = 'correct-horse-battery-staple';
  const spawned = spawnServer({
    CONTROL_TOKEN: TOKEN,
    ALLOWED_HOSTS: ' .example.test , ',
    CLIENT_DEV_SERVER: '1',
    LOG_LEVEL: 'info',
  });
  const { url } = await spawned.listening();
  const { port } = new URL(url);

  const watcher = await join(url, 'watcher', { auth: { token: 'not-the-token' } });
  const controller = await join(url, 'controller', { auth: { token: TOKEN } });
  expect((await watcher.buy('Apple')).ack).toEqual({ ok: false, error: WATCH_ONLY });
  expect((await controller.buy('Apple')).ack).toEqual({
    ok: true,
    stock: { name: 'Apple', price: grown(14.5) },
  });

  for (const host of [`app.example.test:${port}`, 'example.test', 'a.b.example.test:1']) {
    const origin = `http://${host}`;
    expect((await getWithHost(url, '/healthz', host, { origin })).status).toBe(200);
    expect((await getWithHost(url, POLLING_HANDSHAKE, host, { origin })).status).toBe(200);
    expect((await upgradeWithHost(url, host, origin)).status).toBe(101);
  }
  // Names are case-insensitive (browsers send them lowercased, other clients may not).
  expect((await getWithHost(url, '/healthz', `App.Example.TEST:${port}`)).status).toBe(200);
  // The defaults stay, and other names are still refused.
  expect((await getWithHost(url, '/healthz', `localhost:${port}`)).status).toBe(200);
  const from = spawned.logs.mark;
  const host = `app.example.test.evil:${port}`;
  expect((await getWithHost(url, '/healthz', host)).status).toBe(403);
  expect((await upgradeWithHost(url, host)).status).toBe(400);
  const logged = await spawned.logs.waitForCount(2, (line) => line['msg'] === REFUSED_MESSAGE, {
    from,
    timeoutMs: 3_000,
    what: 'the two refusals in the log',
  });
  expect(logged.map((line) => line['level'])).toEqual([LEVEL.warn, LEVEL.warn]);

  expect(await (await fetch(`${url}/`)).text()).toContain('src="/@vite/client"');
  // The token is a secret: it is not in the server's log.
  expect(JSON.stringify(spawned.logs.items)).not.toContain(TOKEN);
  expect(spawned.stderr()).not.toContain(TOKEN);
});
