import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';

import { SOCKET_PATH } from '../../protocol/events';
import { ROOT } from '../../server/paths';

import { printFigures, recordFigure } from '../helpers/figures';
import { linesWith } from '../helpers/logs';
import { processRunning, waitForProcessGone } from '../helpers/processes';
import { withDeadline } from '../helpers/recorder';
import { isUpdate, rawRequest, TestClient } from '../helpers/server';
import { freshStateFile, killServers, spawnServer as spawn } from '../helpers/server-process';

jest.setTimeout(30_000);

afterEach(killServers);
afterAll(() => printFigures('main.test.ts'));

const post = (url: string, op: string, headers = {}) =>
  rawRequest(url, `/api/${op}`, { 'content-type': 'application/json', ...headers }, 'POST');

// SIGINT takes the same path (the Ctrl-C test below); the state it writes is crash-kills.test's,
// what close() tells clients realtime.test's, and that the token stays out of the log http.test's.
test('reads its settings from the environment, from any folder; SIGTERM then shuts down cleanly, the child gone', async () => {
  const token = 'correct-horse-battery-staple';
  const stateFile = freshStateFile();
  const env = {
    ...{ TICK_MS: '100', CONTROL_TOKEN: token, ALLOWED_HOSTS: '.example.test,' },
    ...{ TRUST_PROXY: '1', OPS_PER_SECOND: '1', LOG_LEVEL: 'debug' },
    ...{ CORS_ORIGINS: 'http://good.example', TRANSPORTS: 'websocket' },
    STATE_FILE: path.relative(ROOT, stateFile),
  };
  const server = spawn(env, { cwd: path.join(ROOT, 'test') });
  const { url, tickerPid } = await server.listening();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  // STATE_FILE: relative to the project, not to the working directory.
  expect(existsSync(stateFile)).toBe(true);
  // CORS_ORIGINS: the listed origin's pages may read the API.
  const cors = await rawRequest(url, '/api/stocks', { origin: 'http://good.example' });
  expect(cors.headers['access-control-allow-origin']).toBe('http://good.example');
  // TRANSPORTS: the long-polling handshake is refused.
  expect((await rawRequest(url, `${SOCKET_PATH}/?EIO=4&transport=polling`, {})).status).toBe(400);
  // ALLOWED_HOSTS: the listed domain served, other names refused.
  const status = async (name: string) =>
    (await rawRequest(url, '/healthz', { host: `${name}:${new URL(url).port}` })).status;
  expect(await status('app.example.test')).toBe(200);
  expect(await status('app.example.test.evil')).toBe(403);

  // CONTROL_TOKEN: an op without it is refused.
  expect((await post(url, 'stop')).status).toBe(401);
  await server.logged('refused an op'); // at LOG_LEVEL=debug only
  // TRUST_PROXY and OPS_PER_SECOND: one op a second for each client the proxy names.
  const op = (name: string, client: string) =>
    post(url, name, { authorization: `Bearer ${token}`, 'x-forwarded-for': client });
  // TICK_MS: six updates within 4 s, where 1000 ms ticks would need 5 s.
  const watcher = await TestClient.connect(url, 'watcher');
  await watcher.welcome();
  const from = watcher.events.mark;
  expect((await op('start', '203.0.113.9')).status).toBe(200);
  await watcher.events.waitForCount(6, isUpdate, { from, timeoutMs: 4_000, what: 'six ticks' });
  watcher.close();
  const stops = await Promise.all(
    ['203.0.113.1', '203.0.113.2', '203.0.113.1'].map((client) => op('stop', client)),
  );
  expect(stops.map(({ status }) => status).sort()).toEqual([200, 200, 429]);
  const signalledAt = performance.now();
  server.process.kill('SIGTERM');
  const end = await server.ending(10_000, 'bye', 'shutting down');
  recordFigure('SIGTERM -> exit', performance.now() - signalledAt);
  expect(end).toEqual({ exit: { code: 0, signal: null }, stderr: '', said: ['shutting down'] });
  expect(processRunning(tickerPid)).toBe(false);
});

// A SIGSTOPped ticker child makes the shutdown slow.
test.each([
  ['the same signal twice, as npm passes on a Ctrl-C, is one clean stop', 'SIGINT', false],
  // SIGHUP (a closed terminal) is a clean stop too.
  ['a second, different signal during a slow shutdown kills it at once', 'SIGHUP', true],
] as const)('%s', async (_title, first, killed) => {
  const server = spawn({ TICK_MS: '100' });
  const { tickerPid } = await server.listening();
  process.kill(tickerPid, 'SIGSTOP');
  server.process.kill(first);
  await server.logged('shutting down');
  const secondAt = performance.now();
  server.process.kill('SIGINT');
  // A copy taken for a second signal would kill it at once, before the 2 s the clean stop waits.
  const second = 'second signal: exiting now';
  const end = await server.ending(killed ? 1_800 : 10_000, killed ? second : 'bye', second, 'bye');
  recordFigure(`${first} then SIGINT -> exit`, performance.now() - secondAt);
  const exit = killed ? { code: null, signal: 'SIGKILL' } : { code: 0, signal: null };
  expect(end).toEqual({ exit, stderr: '', said: [killed ? second : 'bye'] });
});

/** Env for a server whose state writes, in the writer's thread, hang in the kernel (a hung network
 * disk) once `hang()` was called, or from the start; or take 3 s if `slow` (preloaded). */
function hangingWrites(from?: 'hang' | 'slow') {
  const folder = path.dirname(freshStateFile());
  const at = (name: string) => path.join(folder, name);
  execFileSync('mkfifo', [at('fifo')]);
  const sleep = 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000)';
  const hook = `const fs = require('node:fs'), { renameSync } = fs;
    if (!require('node:worker_threads').isMainThread)
      fs.renameSync = (...args) => {
        if (fs.existsSync(${JSON.stringify(at('slow'))})) ${sleep};
        if (fs.existsSync(${JSON.stringify(at('hang'))})) fs.openSync(${JSON.stringify(at('fifo'))}, 'r');
        return renameSync(...args);
      };`;
  writeFileSync(at('hook.cjs'), hook);
  if (from) writeFileSync(at(from), '');
  const env = { STATE_FILE: at('state.json'), NODE_OPTIONS: `--require=${at('hook.cjs')}` };
  return { env, hang: () => writeFileSync(at('hang'), '') };
}

// process.exit() would wait for good for a writer thread stuck in the kernel: the deadline kills.
test.each([
  // A write stuck before the signal: ops are refused once it misses its 2 s deadline.
  [
    'a shutdown held up by a state write stuck in the kernel is killed at its 5 s deadline',
    'start',
  ],
  // The last write, of the true seq below the ones the stop reserved, is the one that hangs.
  ['so is one whose last state write gets stuck', 'stop'],
] as const)('%s', async (_title, op) => {
  const { env, hang } = hangingWrites();
  const server = spawn(env);
  const { url, tickerPid } = await server.listening();
  if (op === 'start') hang();
  expect((await post(url, op)).status).toBe(op === 'start' ? 503 : 200);
  hang();
  const signalledAt = performance.now();
  server.process.kill('SIGTERM');
  const end = await server.ending(15_000, 'shutdown took too long', 'bye', 'shutdown failed');
  expect(performance.now() - signalledAt).toBeGreaterThanOrEqual(4_900);
  expect(end).toEqual({ exit: { code: null, signal: 'SIGKILL' }, stderr: '', said: [] });
  await waitForProcessGone(tickerPid, 5_000);
});

// A signal after the fork but before the child is ready fails listen(): the shutdown still exits 0.
test('SIGTERM while the server is still starting is a clean stop, not a failure', async () => {
  // The child is ready ~80 ms after its fork: a busy machine may log it too late, so it tries again.
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = spawn({ TICK_MS: '100' });
    const forked = await server.logged('ticker child forked', 15_000);
    server.process.kill('SIGTERM');
    const end = await server.ending(10_000, 'bye', 'forkcast listening');
    expect(end).toMatchObject({ exit: { code: 0, signal: null }, stderr: '' });
    await waitForProcessGone(Number(forked['pid']), 5_000);
    if (end.said.length === 0) return;
  }
  throw new Error('each SIGTERM came after the server was listening');
}, 60_000);

// Under /proc, Node's recursive mkdir retries for good: only the state file's deadline (2 s) ends
// that start. Still not done a deadline later, it may be a stuck thread exit() would wait for.
const KILLED = { code: null, signal: 'SIGKILL' };
test.each([
  [
    'it cannot write',
    () => ({ STATE_FILE: '/proc/self/x/state.json' }),
    'creating the state folder',
    KILLED,
  ],
  ['whose writes hang', () => hangingWrites('hang').env, 'writing the state file', KILLED],
  [
    'whose writes are slow',
    () => hangingWrites('slow').env,
    'writing the state file',
    { code: 1, signal: null },
  ],
])(
  'a state file %s: the server says so and exits, killed if the operation is still stuck a deadline later; it forks nothing',
  async (_title, env, what, exit) => {
    const server = spawn(env());
    // With no child to hold it, its output ends with it: 'close' comes once all of it was read.
    await withDeadline(once(server.process, 'close'), 15_000, 'the server to exit');
    expect(await server.exited).toEqual(exit);
    expect(linesWith(server.logs, 'ticker child forked')).toEqual([]);
    const failed = `: ${what} took longer than 2000 ms\n`;
    expect(server.stderr()).toMatch(/^forkcast failed to start: state file \/.*\/state.json: /);
    expect(server.stderr().endsWith(failed)).toBe(true);
  },
);

// Two servers on one file would number seqs from the same base, and the last write would win.
test('a second server on a state file in use stops before forking; once the first is SIGKILLed, a new one takes the file over within seconds', async () => {
  const stateFile = freshStateFile();
  const first = spawn({ STATE_FILE: stateFile });
  const { url } = await first.listening();
  const second = spawn({ STATE_FILE: stateFile });
  await withDeadline(once(second.process, 'close'), 15_000, 'the second server to exit');
  expect(linesWith(second.logs, 'ticker child forked')).toEqual([]);
  expect(second.stderr()).toMatch(/^forkcast failed to start: state file .*: Lock file is already/);
  // The first still owns the file: its ops are saved and acknowledged.
  expect((await post(url, 'start')).status).toBe(200);
  first.process.kill('SIGKILL');
  await first.exited;
  const third = await spawn({ STATE_FILE: stateFile }).url();
  expect(await (await fetch(`${third}/healthz`)).json()).toMatchObject({ running: true });
});

// listen() fails after the child is forked: the child must not outlive the failed start. It holds
// the server's output: 'close' comes once it is gone too. The lock's refusal exits 1 as this does.
test('a port already taken: the server exits 1 with a readable message, its child gone', async () => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const server = spawn({ PORT: String((taken.address() as AddressInfo).port) });
  const closed = withDeadline(once(server.process, 'close'), 15_000, 'the server to exit');
  await closed.finally(() => taken.close());
  expect(await server.exited).toEqual({ code: 1, signal: null });
  expect(server.stderr()).toMatch(/^forkcast failed to start: listen EADDRINUSE.*\n$/);
});
