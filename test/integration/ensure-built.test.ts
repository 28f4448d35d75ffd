/**
 * scripts/ensure-built.mjs, which `npm start` and the test setups run, on a copy of the
 * server's sources and build (the real dist/ is in use by the other tests): it does nothing
 * when the build matches its sources, and builds again when a source changes or when an
 * output was changed behind its back, as a development build would. That last rebuild starts
 * from nothing, as a fresh clone's first build does.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ROOT } from '../helpers/forked-ticker';

jest.setTimeout(120_000);

const SOURCES = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'scripts',
  'protocol',
  'ticker',
  'server',
];

const BUILT = ['server', 'ticker', 'protocol'];

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-build-'));
  for (const entry of SOURCES) {
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
  // The test setup has just built these from the same sources: a current build to start from.
  for (const entry of [...BUILT, 'build-stamp.json', '.tsbuildinfo']) {
    cpSync(path.join(ROOT, 'dist', entry), path.join(dir, 'dist', entry), { recursive: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs ensure-built for the server and says whether it built (it says so on stderr). */
function built(): boolean {
  const run = spawnSync(
    process.execPath,
    [path.join(dir, 'scripts', 'ensure-built.mjs'), '--server'],
    {
      cwd: dir,
      encoding: 'utf8',
    },
  );
  expect(run.status).toBe(0);
  return run.stderr.includes('forkcast: building');
}

test('builds only when a source or an output changed, and an output changed from nothing', () => {
  const tickerMain = path.join(dir, 'dist', 'ticker', 'main.js');
  const original = readFileSync(tickerMain, 'utf8');
  expect(built()).toBe(false);

  appendFileSync(path.join(dir, 'server', 'paths.ts'), '\n');
  expect(built()).toBe(true);
  expect(built()).toBe(false);

  // An output changed by something else: tsc's own incremental state would call it current.
  appendFileSync(tickerMain, '\nthrow new Error("not what was built");\n');
  expect(built()).toBe(true);
  expect(readFileSync(tickerMain, 'utf8')).toBe(original);
  expect(built()).toBe(false);
});
