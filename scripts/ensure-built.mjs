#!/usr/bin/env node
// Builds what is missing or older than its sources, so `npm start` on a fresh clone builds
// everything and a warm start skips straight to the server. Flags: --server, --client (default both).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const wanted = process.argv.slice(2);
const all = wanted.length === 0;

// Output that lives beside sources: the benchmark's results are not something to build from.
const notSources = new Set([path.join('bench', 'results')]);

/** Newest modification time of the given files and folders (recursively), or 0. */
function newest(entries) {
  let latest = 0;
  for (const entry of entries) {
    const full = path.join(root, entry);
    if (notSources.has(entry) || !existsSync(full)) continue;
    const stat = statSync(full);
    if (stat.isDirectory()) {
      latest = Math.max(latest, newest(readdirSync(full).map((name) => path.join(entry, name))));
    } else {
      latest = Math.max(latest, stat.mtimeMs);
    }
  }
  return latest;
}

function outdated(output, sources) {
  const target = path.join(root, output);
  return !existsSync(target) || statSync(target).mtimeMs < newest(sources);
}

function run(label, bin, args) {
  process.stderr.write(`forkcast: building ${label}...\n`);
  execFileSync(process.execPath, [path.join(root, 'node_modules', bin), ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NG_CLI_ANALYTICS: 'false' },
  });
}

const serverSources = [
  'protocol',
  'ticker',
  'server',
  'bench',
  'tsconfig.json',
  'tsconfig.build.json',
  'package-lock.json',
];
const clientSources = [
  'client',
  'protocol',
  'angular.json',
  'tsconfig.json',
  'tsconfig.app.json',
  'package-lock.json',
];

// tsc --build info lives in dist/.tsbuildinfo; its mtime marks the last server build.
if ((all || wanted.includes('--server')) && outdated('dist/.tsbuildinfo', serverSources)) {
  run('server and ticker', 'typescript/bin/tsc', ['-p', 'tsconfig.build.json']);
  // An incremental tsc that finds nothing to do leaves the file alone; mark the check as done.
  const now = new Date();
  utimesSync(path.join(root, 'dist/.tsbuildinfo'), now, now);
}
if ((all || wanted.includes('--client')) && outdated('dist/client/main.js', clientSources)) {
  run('Angular client', '@angular/cli/bin/ng.js', ['build']);
}
