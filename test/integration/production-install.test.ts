/** A production install as the Dockerfile makes one (what it copies, `npm ci --omit=dev`, offline:
 * the project's own install filled the cache); most of this file's time is npm unpacking. */
import { execFileSync, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ROOT } from '../../server/paths';
import { printFigures, recordFigure } from '../helpers/figures';
import { withDeadline } from '../helpers/recorder';
import { spawnServer } from '../helpers/server-process';

const ENSURE_BUILT = 'scripts/ensure-built.mjs';
/** What the Dockerfile's runtime stage copies from the context or the build (its node_modules
 * are npm ci's), and the script `npm start` runs first. */
const runtime = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split(' AS runtime\n')[1];
const SHIPPED = [...(runtime ?? '').matchAll(/^COPY (?!--from=deps)(.+) \S+$/gm)]
  .flatMap(([, sources = '']) => sources.replace('--from=build ', '').split(' '))
  .map((source) => source.replace(/^\/app\//, ''))
  .concat(ENSURE_BUILT);
/** Development tools, then browser code: what a production install must not carry. */
const TOOLS = ['typescript', 'ts-node', '@angular/cli', 'utf-8-validate', 'pino-pretty'];
const NOT_SHIPPED = [...TOOLS, '@angular/core', 'rxjs', 'zone.js', 'socket.io-client'];

let dir: string;

beforeAll(() => {
  execFileSync(process.execPath, [path.join(ROOT, ENSURE_BUILT)], { stdio: 'inherit' });
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-production-'));
  for (const entry of SHIPPED)
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  const ci = ['ci', '--omit=dev', '--strict-allow-scripts', '--offline', '--no-audit', '--no-fund'];
  const env = { ...process.env, NODE_ENV: 'production' };
  execFileSync('npm', ci, { cwd: dir, stdio: 'pipe', env });
}, 180_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  printFigures('production-install.test.ts');
});

test('is at most 80 MB on disk and carries no build tools or browser code; npm start refuses a dist/ that is not what was built, such as a development bundle', () => {
  const megabytes = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
  recordFigure('production install', megabytes / 1024, 'MB');
  expect(megabytes / 1024).toBeLessThan(80);
  const present = NOT_SHIPPED.filter((name) => existsSync(path.join(dir, 'node_modules', name)));
  expect([present, existsSync(path.join(dir, 'node_modules', 'express'))]).toEqual([[], true]);

  const devBundle = path.join(dir, 'dist', 'client', 'main.js');
  writeFileSync(devBundle, '// a development build\n');
  const start = spawnSync(process.execPath, [ENSURE_BUILT], { cwd: dir, encoding: 'utf8' });
  rmSync(devBundle);
  const refused = expect.stringContaining('dist/client is not what was built');
  expect([start.status, start.stderr]).toEqual([1, refused]);
});

test('npm start serves the built app at once, without building', async () => {
  // A group of its own: the signal below reaches npm, its shell and the server, as Ctrl-C does.
  const server = spawnServer({}, { argv: ['npm', 'start'], cwd: dir, detached: true });
  // The pipe closes only once npm, its shell and the server have all exited.
  const allGone = once(server.process.stdout, 'close');
  try {
    const url = await server.url();
    const shell = await fetch(url);
    expect([shell.status, (await shell.text()).includes('<app-root')]).toEqual([200, true]);
    const health = (await fetch(`${url}/healthz`)).status;
    expect([health, server.stderr()]).toEqual([200, expect.not.stringContaining('building')]);
  } finally {
    process.kill(-server.process.pid!, 'SIGTERM');
  }
  await withDeadline(allGone, 10_000, 'npm, its shell and the server to exit');
}, 30_000);
