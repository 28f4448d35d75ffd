/** scripts/ensure-built.mjs with the real compiler and configs on a stand-in source tree. */
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { ROOT } from '../../server/paths';

jest.setTimeout(60_000);

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-build-'));
  const configs = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
  // With the real contract, which the API documents are generated from.
  for (const entry of [...configs, 'scripts', 'protocol'])
    cpSync(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  for (const [folder, text] of Object.entries({
    protocol: 'export const answer = 42;\n',
    ticker: "import { answer } from '../protocol/main';\nconsole.log(answer);\n",
    server: "import { answer } from '../protocol/main';\nexport const port = answer;\n",
  })) {
    mkdirSync(path.join(dir, folder), { recursive: true });
    writeFileSync(path.join(dir, folder, 'main.ts'), text);
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  expect(built()).toBe(true);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs ensure-built for the server and says whether it built (it says so on stderr). */
function built(): boolean {
  const script = path.join(dir, 'scripts', 'ensure-built.mjs');
  const run = spawnSync(process.execPath, [script, '--server'], { cwd: dir, encoding: 'utf8' });
  expect([run.status, run.stderr.replace(/^forkcast: building.*\n/, '')]).toEqual([0, '']);
  return run.stderr.includes('forkcast: building');
}

test("builds only when a source, an output or the API documents' script changed, an output changed from nothing; writes the API documents with every build", () => {
  const tickerMain = path.join(dir, 'dist', 'ticker', 'main.js');
  const original = readFileSync(tickerMain, 'utf8');
  expect(built()).toBe(false);

  appendFileSync(path.join(dir, 'server', 'main.ts'), 'export const host = "127.0.0.1";\n');
  expect(built()).toBe(true);
  expect(readFileSync(path.join(dir, 'dist', 'server', 'main.js'), 'utf8')).toContain('127.0.0.1');
  expect(built()).toBe(false);

  // An output changed by something else: tsc's own incremental state would call it current.
  appendFileSync(tickerMain, '\nthrow new Error("not what was built");\n');
  expect(built()).toBe(true);
  expect(readFileSync(tickerMain, 'utf8')).toBe(original);
  expect(built()).toBe(false);

  const openapi = path.join(dir, 'dist', 'contracts', 'openapi.json');
  rmSync(openapi);
  expect(built()).toBe(true);
  expect(JSON.parse(readFileSync(openapi, 'utf8'))).toMatchObject({ openapi: '3.1.0' });

  appendFileSync(path.join(dir, 'scripts', 'contracts.mjs'), '\n');
  expect(built()).toBe(true);
  expect(built()).toBe(false);
});
