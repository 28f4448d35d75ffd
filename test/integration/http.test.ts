/**
 * The HTTP side of the real server: health, the Pug shell, the 404 and the error handler.
 */
import { startServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ tickMs: 200 });
});

afterAll(async () => {
  await server.forkcast.close();
});

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, { headers });
}

test('GET /healthz reports the ticker as JSON', async () => {
  const response = await get('/healthz');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-powered-by')).toBeNull();
  const body: unknown = await response.json();
  expect(body).toEqual({
    ok: true,
    status: 'ok',
    running: false,
    seq: 0,
    uptime: expect.any(Number),
    pid: server.forkcast.ticker.pid,
  });
  const { pid, uptime } = body as { pid: unknown; uptime: number };
  expect(typeof pid).toBe('number');
  expect(pid).not.toBe(process.pid);
  expect(uptime).toBeGreaterThan(0);
});

test('GET /healthz follows the running flag and seq', async () => {
  const started = await server.forkcast.ticker.start();
  expect(started).toEqual({ ok: true, running: true, changed: true });
  const stopped = await server.forkcast.ticker.stop();
  expect(stopped).toEqual({ ok: true, running: false, changed: true });
  const snapshot = server.forkcast.ticker.snapshot();
  const body: unknown = await (await get('/healthz')).json();
  expect(body).toEqual({
    ok: true,
    status: 'ok',
    running: false,
    seq: snapshot.seq,
    uptime: expect.any(Number),
    pid: expect.any(Number),
  });
});

test('GET / renders the HTML shell', async () => {
  const response = await get('/', { accept: 'text/html' });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  expect(response.headers.get('x-powered-by')).toBeNull();
  const html = await response.text();
  expect(html).toMatch(/^<!DOCTYPE html><html lang="en">/);
  expect(html).toContain('<title>forkcast — live stock ticker</title>');
});

test('an unknown path is a 404 in JSON without a stack trace', async () => {
  const response = await get('/no/such/page');
  expect(response.status).toBe(404);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-powered-by')).toBeNull();
  expect(await response.json()).toEqual({ error: 'Not found' });
});

test('an unknown path asked for as HTML is a plain-text 404', async () => {
  const response = await get('/no/such/page', { accept: 'text/html' });
  expect(response.status).toBe(404);
  expect(await response.text()).toBe('Not found');
});

test.each(['/%E0%A4%A', '/%00', '/..%2f..%2fpackage.json', '/%2e%2e/package.json'])(
  'a malformed or traversing path (%s) is a plain 404, leaking nothing',
  async (path) => {
    const response = await get(path);
    expect(response.status).toBe(404);
    expect(response.headers.get('x-powered-by')).toBeNull();
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ error: 'Not found' });
  },
);

test('static assets are served', async () => {
  const response = await get('/favicon.svg');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
  expect(await response.text()).toMatch(/^<svg /);
});
