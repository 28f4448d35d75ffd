#!/usr/bin/env node
// Builds what is missing or stale, so `npm start` on a fresh clone builds everything and a warm
// start goes straight to the server. A build is fingerprinted, not dated: dist/build-stamp.json
// records a hash of its inputs (sources, configs, lockfile) and of what it wrote, so a changed
// source, and equally an output changed behind its back (a development bundle, a half-deleted
// dist/), both mean "build again". Without build tools (a production install) it only checks
// that dist/ is what was built. Flags: --server, --client (default both), --bench (only when
// asked: the benchmark is not part of the product), --force.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const force = args.includes('--force');
const wanted = args.filter((arg) => arg !== '--force');
const stampFile = path.join(root, 'dist', 'build-stamp.json');

function fail(problem) {
  process.stderr.write(`forkcast: ${problem}\n`);
  process.exit(1);
}

for (const arg of args) {
  if (!['--server', '--client', '--bench', '--force'].includes(arg))
    fail(`unknown argument ${arg}`);
}

// Output that lives beside sources: the benchmark's build and results are not sources.
const notSources = new Set([path.join('bench', 'build'), path.join('bench', 'results')]);

const parts = {
  server: {
    label: 'server and ticker',
    inputs: [
      'protocol',
      'ticker',
      'server',
      'tsconfig.json',
      'tsconfig.build.json',
      'scripts/contracts.mjs',
    ],
    outputs: ['dist/server', 'dist/ticker', 'dist/protocol', 'dist/contracts'],
    // tsc's incremental build info only knows what tsc itself wrote.
    extra: ['dist/.tsbuildinfo'],
    tool: 'typescript/bin/tsc',
    args: ['-p', 'tsconfig.build.json'],
    // The API documents, generated from the schemas tsc has just compiled.
    then: 'scripts/contracts.mjs',
  },
  client: {
    label: 'Angular client',
    inputs: ['client', 'protocol', 'angular.json', 'tsconfig.json', 'tsconfig.app.json'],
    outputs: ['dist/client'],
    extra: [],
    tool: '@angular/cli/bin/ng.js',
    // The production configuration, always: the development one is `npm run dev`'s, in memory.
    args: ['build', '--configuration', 'production'],
  },
  bench: {
    label: 'benchmark',
    inputs: ['bench', 'protocol', 'server', 'tsconfig.json'],
    outputs: ['bench/build'],
    extra: [],
    tool: 'typescript/bin/tsc',
    args: ['-p', 'bench/tsconfig.json'],
    onlyWhenAsked: true,
  },
};

/** Every file under the given entries, as sorted paths relative to the root. */
function filesOf(entries) {
  const files = [];
  const walk = (entry) => {
    const full = path.join(root, entry);
    if (!existsSync(full)) return;
    // Skipped inside an input folder only: bench/build itself is the bench's output.
    if (statSync(full).isDirectory())
      readdirSync(full)
        .map((name) => path.join(entry, name))
        .filter((inner) => !notSources.has(inner))
        .forEach(walk);
    else files.push(entry);
  };
  entries.forEach(walk);
  return files.sort();
}

/** One hash of the names and contents of every file under the entries; null when there are none. */
function fingerprint(entries) {
  const files = filesOf(entries);
  if (files.length === 0) return null;
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(path.join(root, file)));
  return hash.digest('hex');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(stampFile, 'utf8'));
  } catch {
    return {};
  }
}

// The lockfile is an input of both: a new compiler or framework version means a new build.
const inputsOf = (part) => fingerprint([...part.inputs, 'package-lock.json']);
const built = (part, stamp) =>
  stamp?.outputs != null && stamp.outputs === fingerprint(part.outputs);

const stamp = readStamp();
for (const [name, part] of Object.entries(parts)) {
  if (wanted.length > 0 ? !wanted.includes(`--${name}`) : part.onlyWhenAsked) continue;
  const intact = built(part, stamp[name]);
  if (!existsSync(path.join(root, 'node_modules', part.tool))) {
    // A production install (`npm ci --omit=dev`) has no compilers: it runs what was built.
    if (intact && !force) continue;
    fail(
      `${part.outputs.join(', ')} ${intact ? 'cannot be rebuilt' : 'is not what was built'} without the build tools; run \`npm ci && npm run build\``,
    );
  }
  const inputs = inputsOf(part);
  if (!force && intact && stamp[name].inputs === inputs) continue;
  process.stderr.write(`forkcast: building ${part.label}...\n`);
  // Outputs changed behind the build's back are not trusted, nor kept: start from nothing.
  if (!intact) {
    for (const entry of [...part.outputs, ...part.extra]) {
      rmSync(path.join(root, entry), { recursive: true, force: true });
    }
  }
  const run = (file, args) =>
    execFileSync(process.execPath, [path.join(root, file), ...args], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, NG_CLI_ANALYTICS: 'false' },
    });
  run(path.join('node_modules', part.tool), part.args);
  if (part.then) run(part.then, []);
  stamp[name] = { inputs, outputs: fingerprint(part.outputs) };
  writeFileSync(stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
}
