#!/usr/bin/env node
// `npm run dev`: tsc --watch recompiles the server into dist/, node --watch restarts it on the
// result (CLIENT_DEV_SERVER=1, its log made readable by pino-pretty), and Angular's dev server
// (ng serve) builds the client in memory, reloads the page on change and proxies the rest to the
// server (proxy.conf.mjs). Nothing is written to dist/client. PORT (default 4561) is the
// server's, NG_PORT (default 4200) the dev server's: the page to open.
//
// Why not `concurrently`: Ctrl-C in a terminal signals its whole foreground process group, and
// concurrently passes the signal on to every process of every tree (tree-kill), node --watch
// once more to the server, which took the second for "exit now". Here every tool runs in a
// process group of its own, out of the terminal's reach, and this script asks each to stop once.
// package.json starts it with `exec`: the shell npm puts in between would die of the terminal's
// SIGINT, and npm then exit 130 however cleanly everything stopped.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';

import { prettyFactory } from 'pino-pretty';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverPort = process.env.PORT || '4561';
const clientPort = process.env.NG_PORT || '4200';
/** Longer than the server's own shutdown deadline (5 s, server/main.ts). */
const STOP_DEADLINE_MS = 10_000;

const color = process.stdout.isTTY && process.stdout.hasColors();
const paint = (code, text) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const say = (text) => process.stdout.write(`${paint('1', 'dev')}    ${text}\n`);
const pretty = prettyFactory({
  colorize: color,
  ignore: 'hostname,app',
  translateTime: 'SYS:HH:MM:ss.l',
});

const bin = (tool) => path.join(root, 'node_modules', tool);
const tools = [
  {
    name: 'tsc',
    code: '34',
    args: [
      bin('typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--watch',
      '--preserveWatchOutput',
    ],
  },
  {
    name: 'ng',
    code: '35',
    args: [bin('@angular/cli/bin/ng.js'), 'serve', '--port', clientPort],
    env: { NG_CLI_ANALYTICS: 'false' },
  },
  {
    name: 'server',
    code: '32',
    args: [
      // Separate values, and the flag last: Node 20 hands the child the argument after any
      // `--watch…=value`, which then starts a second watcher inside the first.
      ...['server', 'ticker', 'protocol'].flatMap((dir) => ['--watch-path', `dist/${dir}`]),
      '--watch-preserve-output',
      'dist/server/main.js',
    ],
    env: { CLIENT_DEV_SERVER: '1' },
    format: (line) => pretty(line).replace(/\n$/, ''),
  },
];

let stopping = false;
let failed = false;
const ready = { tsc: false, server: false, ng: null, shown: false };
const running = new Set();

function run({ name, code, args, env, format = (line) => line }) {
  const child = spawn(process.execPath, args, {
    cwd: root,
    // Its own process group: a Ctrl-C in the terminal reaches this script only.
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'pipe', 'pipe'],
    // PORT: the server listens on it, and ng's proxy.conf.mjs sends there.
    env: { ...process.env, ...(color ? { FORCE_COLOR: '1' } : {}), PORT: serverPort, ...env },
  });
  running.add(child);
  const prefix = paint(code, name.padEnd(7));
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      process.stdout.write(`${prefix}${format(line).replaceAll('\n', `\n${prefix}`)}\n`);
      noticeReady(name, line);
    });
  }
  return new Promise((resolve) =>
    child.on('close', (exitCode, signal) => {
      running.delete(child);
      // Asked to stop, a tool may die of the signal or say so (Vite exits 128 + SIGTERM); on its
      // own, any exit is a failure.
      const asked = exitCode === 0 || exitCode === 128 + constants.signals.SIGTERM || signal;
      if (!stopping || !asked) {
        failed = true;
        say(paint('31', `${name} exited (${signal ?? `code ${exitCode}`})`));
      }
      stop();
      resolve();
    }),
  );
}

function noticeReady(name, line) {
  // tsc's first pass over the sources is done: a server restart it caused came before this.
  if (name === 'tsc' && line.includes('Watching for file changes')) ready.tsc = true;
  if (name === 'server' && line.includes('"msg":"forkcast listening"')) ready.server = true;
  if (name === 'ng') ready.ng ??= /Local:\s+(http\S+)/.exec(stripVTControlCharacters(line))?.[1];
  if (ready.tsc && ready.server && ready.ng && !ready.shown) {
    ready.shown = true;
    say(
      paint('1', `ready: open ${ready.ng} (the server behind it: http://127.0.0.1:${serverPort})`),
    );
  }
}

/**
 * Asks every tool still running to stop, once: SIGTERM, whatever arrived, to the tool's own
 * process only. Each stops its children itself: node --watch passes the signal on to the server
 * (signalled directly as well, the server would take the second for "exit now"), which stops
 * its ticker child; Vite closes its esbuild service (killed under it, Vite fails with exit 1).
 */
function stop() {
  if (stopping) return;
  stopping = true;
  for (const child of running) kill(child.pid, 'SIGTERM');
  setTimeout(() => {
    failed = true;
    say(paint('31', `still running ${STOP_DEADLINE_MS} ms later; killing`));
    for (const child of running) kill(-child.pid, 'SIGKILL');
  }, STOP_DEADLINE_MS).unref();
}

function kill(pid, name) {
  try {
    process.kill(pid, name);
  } catch {
    // Gone already.
  }
}

// The terminal's signal and npm's copy of it arrive within moments; either one stops everything.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, stop);

say(`starting: the page will be at http://localhost:${clientPort}/ once it is built`);
await Promise.all(tools.map(run));
say(failed ? paint('31', 'stopped with errors') : 'stopped');
process.exitCode = failed ? 1 : 0;
