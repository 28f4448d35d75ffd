/**
 * The HTTP side of the real server: health, the Pug shell, the 404 and the error handler, and
 * how the client is delivered (compression, caching by hashed name, icons).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';

import { findClientAssets } from '../../server/client-assets';
import { startServer, type TestServer } from '../helpers/server';

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ tickMs: 200 });
});

/** Temporary client folders, removed at the end. */
const folders: string[] = [];

afterAll(async () => {
  await server.forkcast.close();
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

async function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, { headers });
}

test('GET /healthz reports the ticker as JSON, following the running flag and seq', async () => {
  const response = await get('/healthz');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as { pid: unknown; uptime: number };
  expect(body).toEqual({
    ok: true,
    status: 'ok',
    running: false,
    seq: 0,
    uptime: expect.any(Number),
    pid: server.forkcast.ticker.pid,
  });
  expect(typeof body.pid).toBe('number');
  expect(body.pid).not.toBe(process.pid);
  expect(body.uptime).toBeGreaterThan(0);

  expect(await server.forkcast.ticker.start()).toEqual({ ok: true, running: true, changed: true });
  expect(await (await get('/healthz')).json()).toMatchObject({ running: true });
  expect(await server.forkcast.ticker.stop()).toEqual({ ok: true, running: false, changed: true });
  const { seq } = server.forkcast.ticker.snapshot();
  expect(await (await get('/healthz')).json()).toMatchObject({ running: false, seq });
});

test('GET / renders the HTML shell', async () => {
  const response = await get('/', { accept: 'text/html' });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/html/);
  const html = await response.text();
  expect(html).toMatch(/^<!DOCTYPE html><html lang="en">/);
  expect(html).toContain('<title>forkcast — live stock ticker</title>');
});

test('an unknown path is a 404 in JSON, or in plain text when asked for as HTML', async () => {
  const response = await get('/no/such/page');
  expect(response.status).toBe(404);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await response.json()).toEqual({ error: 'Not found' });
  const html = await get('/no/such/page', { accept: 'text/html' });
  expect(html.status).toBe(404);
  expect(await html.text()).toBe('Not found');
});

test('static assets are served', async () => {
  const response = await get('/favicon.svg');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
  expect(await response.text()).toMatch(/^<svg /);
});

/** Bytes as they came over the wire, not decoded, with the headers they came with. */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

const DECODE = { gzip: gunzipSync, br: brotliDecompressSync } as const;

/** A production build as `ng build` leaves it: hashed entries, plus an unhashed licence file. */
const BUILD = {
  'main-AB12CD34.js': `export const prices = [${'{"name":"Apple","price":14.5},'.repeat(200)}];\n`,
  'polyfills-EF56GH78.js': '// zone.js\n',
  'styles-IJ90KL12.css': ':root { color-scheme: light dark; }\n',
  '3rdpartylicenses.txt': 'MIT\n',
};

function clientDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
  folders.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('delivery: compression, caching and the shell', () => {
  let built: TestServer;

  beforeAll(async () => {
    built = await startServer({ tickMs: 1_000, clientDir: clientDir(BUILD) });
  });

  afterAll(async () => {
    await built.forkcast.close();
  });

  test.each(['gzip', 'br'] as const)(
    '%s: the bundle and the shell arrive compressed and decode to what was sent',
    async (encoding) => {
      const file = Buffer.from(BUILD['main-AB12CD34.js']);
      const bundle = await rawGet(`${built.url}/main-AB12CD34.js`, { 'accept-encoding': encoding });
      expect(bundle.headers['content-encoding']).toBe(encoding);
      expect(bundle.headers.vary).toMatch(/accept-encoding/i);
      expect(bundle.headers['content-type']).toMatch(/^text\/javascript/);
      expect(bundle.body.length).toBeLessThan(file.length / 4);
      expect(DECODE[encoding](bundle.body)).toEqual(file);

      const shell = await rawGet(`${built.url}/`, { 'accept-encoding': encoding });
      expect(shell.headers['content-encoding']).toBe(encoding);
      const html = DECODE[encoding](shell.body).toString('utf8');
      expect(html).toMatch(/^<!DOCTYPE html>/);
      expect(shell.body.length).toBeLessThan(html.length);
    },
  );

  test('without Accept-Encoding nothing is compressed', async () => {
    for (const pathname of ['/', '/main-AB12CD34.js']) {
      const { headers } = await rawGet(`${built.url}${pathname}`, {});
      expect(headers['content-encoding']).toBeUndefined();
    }
  });

  test('hashed files are cached for a year, everything else is revalidated', async () => {
    const cacheControl = async (pathname: string): Promise<string | null> => {
      const response = await fetch(`${built.url}${pathname}`);
      expect(response.status).toBe(200);
      return response.headers.get('cache-control');
    };
    const year = 'public, max-age=31536000, immutable';
    for (const hashed of ['/main-AB12CD34.js', '/polyfills-EF56GH78.js', '/styles-IJ90KL12.css']) {
      expect(await cacheControl(hashed)).toBe(year);
    }
    for (const unhashed of ['/', '/3rdpartylicenses.txt', '/favicon.svg', '/favicon.ico']) {
      expect(await cacheControl(unhashed)).toBe('no-cache');
    }
  });

  test('the shell links the hashed names found in the client folder', async () => {
    const html = await (await fetch(`${built.url}/`)).text();
    expect(html).toContain('<link rel="stylesheet" href="/styles-IJ90KL12.css">');
    expect(html).toContain(
      '<script src="/polyfills-EF56GH78.js" type="module"></script><script src="/main-AB12CD34.js" type="module"></script>',
    );
    expect(html).not.toMatch(/"\/(main|polyfills)\.js"|"\/styles\.css"|@vite/);
  });

  test('the shell has a description, light and dark theme colours, icons and a noscript message', async () => {
    const html = await (await fetch(`${built.url}/`)).text();
    expect(html).toMatch(/<meta name="description" content="Live stock prices[^"]+">/);
    expect(html).toContain(
      '<meta name="theme-color" media="(prefers-color-scheme: light)" content="#f7f7f5">',
    );
    expect(html).toContain(
      '<meta name="theme-color" media="(prefers-color-scheme: dark)" content="#121418">',
    );
    expect(html).toMatch(/<noscript><p>forkcast needs JavaScript[^<]+<\/p><\/noscript>/);
    for (const icon of ['/favicon.ico', '/favicon.svg', '/apple-touch-icon.png']) {
      expect(html).toContain(`href="${icon}"`);
    }
  });

  test.each([
    ['/favicon.ico', /^image\/(vnd\.microsoft\.icon|x-icon)$/, [0, 0, 1, 0]],
    ['/apple-touch-icon.png', /^image\/png$/, [0x89, 0x50, 0x4e, 0x47]],
  ])('%s is an image', async (pathname, type, magic) => {
    const response = await fetch(`${built.url}${pathname}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(type);
    const bytes = new Uint8Array(await response.arrayBuffer());
    expect([...bytes.subarray(0, 4)]).toEqual(magic);
  });

  test('a development build (unhashed names) is linked as it is', async () => {
    const dev = await startServer({
      tickMs: 1_000,
      clientDir: clientDir({ 'main.js': '', 'polyfills.js': '', 'styles.css': '' }),
    });
    try {
      const html = await (await fetch(`${dev.url}/`)).text();
      expect(html).toContain('href="/styles.css"');
      expect(html).toContain('src="/polyfills.js"');
      expect(html).toContain('src="/main.js"');
      expect((await fetch(`${dev.url}/main.js`)).headers.get('cache-control')).toBe('no-cache');
    } finally {
      await dev.forkcast.close();
    }
  });

  test('two builds in one folder: the server refuses to start rather than guess', () => {
    const mixed = clientDir({ 'main-AB12CD34.js': '', 'main-ZZ99YY88.js': '' });
    expect(() => findClientAssets(mixed)).toThrow(/holds main-\w+\.js and main-\w+\.js/);
  });

  test('no build: the shell says how to build and loads no script', async () => {
    const none = await startServer({ tickMs: 1_000, clientDir: clientDir({}) });
    try {
      const html = await (await fetch(`${none.url}/`)).text();
      expect(html).toContain('The client is not built yet.');
      expect(html).not.toContain('<script');
      expect(html).not.toContain('<link rel="stylesheet"');
    } finally {
      await none.forkcast.close();
    }
  });

  test("with devServer the shell loads Angular's dev server names and its live reload", async () => {
    // Nothing in the folder: the dev server serves the bundle from memory.
    const dev = await startServer({ tickMs: 1_000, clientDir: clientDir({}), devServer: true });
    try {
      const html = await (await fetch(`${dev.url}/`)).text();
      expect(html).toContain('<link rel="stylesheet" href="/styles.css">');
      expect(html).toContain(
        '<script src="/@vite/client" type="module"></script><script src="/polyfills.js" type="module"></script><script src="/main.js" type="module"></script>',
      );
    } finally {
      await dev.forkcast.close();
    }
  });
});
