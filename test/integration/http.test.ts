/** The HTTP side of the real server; the shell's content is test/unit/shell.test.ts's. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';

import { startServer, type TestServer } from '../helpers/server';

/** A production build as `ng build` leaves it: hashed entries, plus an unhashed licence file. */
const BUILD = {
  'main-AB12CD34.js': `export const prices = [${'{"name":"Apple","price":14.5},'.repeat(200)}];\n`,
  'polyfills-EF56GH78.js': '// zone.js\n',
  'styles-IJ90KL12.css': ':root { color-scheme: light dark; }\n',
  '3rdpartylicenses.txt': 'MIT\n',
};

let server: TestServer;
let clientDir: string;

beforeAll(async () => {
  clientDir = mkdtempSync(path.join(tmpdir(), 'forkcast-client-'));
  for (const [name, text] of Object.entries(BUILD)) writeFileSync(path.join(clientDir, name), text);
  server = await startServer({ tickMs: 200, clientDir });
});

afterAll(async () => {
  await server.forkcast.close();
  rmSync(clientDir, { recursive: true, force: true });
});

const get = (pathname: string, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(`${server.url}${pathname}`, { headers });

test('GET /healthz reports the ticker as JSON, following the running flag and seq', async () => {
  const { ticker } = server.forkcast;
  const health = async (): Promise<unknown[]> => {
    const response = await get('/healthz');
    return [response.status, response.headers.get('content-type'), await response.json()];
  };
  expect(ticker.pid).not.toBe(process.pid);
  expect(await health()).toEqual([
    200,
    expect.stringMatching(/^application\/json/),
    { ok: true, status: 'ok', running: false, seq: 0, uptime: expect.any(Number), pid: ticker.pid },
  ]);
  // The first tick comes just after start's ack: wait for it, so that there is a seq to report.
  const ticked = new Promise((resolve) => ticker.on('update', resolve));
  await ticker.start();
  expect(await health()).toEqual([
    200,
    expect.anything(),
    expect.objectContaining({ running: true }),
  ]);
  await ticked;
  await ticker.stop();
  const { seq } = ticker.snapshot();
  expect(seq).toBeGreaterThan(0);
  expect((await health())[2]).toMatchObject({ running: false, seq });
});

test('an unknown path is a 404 in JSON, or in plain text when asked for as HTML', async () => {
  const json = await get('/no/such/page');
  expect([json.status, json.headers.get('content-type'), await json.json()]).toEqual([
    404,
    expect.stringMatching(/^application\/json/),
    { error: 'Not found' },
  ]);
  const html = await get('/no/such/page', { accept: 'text/html' });
  expect([html.status, await html.text()]).toEqual([404, 'Not found']);
});

/** Bytes as they came over the wire, not decoded, with the headers they came with. */
function rawGet(
  pathname: string,
  headers: Record<string, string>,
): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    httpGet(`${server.url}${pathname}`, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

test.each([
  ['gzip', gunzipSync],
  ['br', brotliDecompressSync],
  ['identity', (body: Buffer) => body],
])(
  '%s: the bundle and the shell arrive encoded so and decode to what was sent',
  async (encoding, decode) => {
    const file = Buffer.from(BUILD['main-AB12CD34.js']);
    const bundle = await rawGet('/main-AB12CD34.js', { 'accept-encoding': encoding });
    const shell = await rawGet('/', { 'accept-encoding': encoding });
    const compressed = encoding === 'identity' ? undefined : encoding;
    expect([bundle.headers['content-encoding'], shell.headers['content-encoding']]).toEqual([
      compressed,
      compressed,
    ]);
    expect(bundle.headers.vary).toMatch(/accept-encoding/i);
    expect(decode(bundle.body)).toEqual(file);
    if (compressed) expect(bundle.body.length).toBeLessThan(file.length / 4);
    // The shell links the entries found in the client folder.
    expect(decode(shell.body).toString('utf8')).toMatch(
      /^<!DOCTYPE html>.*href="\/styles-IJ90KL12.css".*src="\/polyfills-EF56GH78.js".*src="\/main-AB12CD34.js"/s,
    );
  },
);

const YEAR = 'public, max-age=31536000, immutable';
test.each([
  ['/main-AB12CD34.js', YEAR, /^text\/javascript/, 'export'],
  ['/polyfills-EF56GH78.js', YEAR, /^text\/javascript/, '// zone'],
  ['/styles-IJ90KL12.css', YEAR, /^text\/css/, ':root'],
  // Unhashed, the shell included, so that a new deploy's asset names are picked up at once.
  ['/', 'no-cache', /^text\/html/, '<!DOCTYPE html>'],
  ['/3rdpartylicenses.txt', 'no-cache', /^text\/plain/, 'MIT'],
  ['/favicon.svg', 'no-cache', /^image\/svg\+xml/, '<svg'],
  ['/favicon.ico', 'no-cache', /^image\/(vnd\.microsoft\.icon|x-icon)$/, '\0\0\x01\0'],
  ['/apple-touch-icon.png', 'no-cache', /^image\/png$/, '\x89PNG'],
])('%s: Cache-Control %s, type %s', async (pathname, cacheControl, type, start) => {
  const response = await get(pathname);
  const head = Buffer.from(await response.arrayBuffer()).subarray(0, start.length);
  expect([
    response.status,
    response.headers.get('cache-control'),
    response.headers.get('content-type'),
    head.toString('latin1'),
  ]).toEqual([200, cacheControl, expect.stringMatching(type), start]);
});
