/** Real server processes: the child SIGKILLed under ops, the state folder broken, a crash loop.
 * The rules are ticker-supervisor.test.ts's; the store's faults, state-file.test.ts's. */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import WebSocket from 'ws';

import { SOCKET_PATH, STATUS } from '../../protocol/events';
import { STOCK_NAMES } from '../../protocol/stocks';
import { linesWith } from '../helpers/logs';
import { scrape, valueOf } from '../helpers/prometheus';
import { cpuMs } from '../helpers/processes';
import { delay } from '../helpers/recorder';
import {
  connectWelcomed,
  expectBuysApplied,
  expectContiguousSeq,
  healthyPid,
  type TestClient,
} from '../helpers/server';
import { freshStateFile, killServers, spawnServer } from '../helpers/server-process';

jest.setTimeout(20_000);

const RESTARTING = 'the ticker is restarting; try again in a moment';
const DIED_PENDING = 'the ticker restarted before answering; try again';
const ENV = { TICK_MS: '100', OPS_PER_SECOND: '1000' };

let clients: TestClient[] = [];
afterEach(() => {
  for (const client of clients) client.close();
  for (const client of clients) expectContiguousSeq(client);
  clients = [];
});
afterAll(killServers);

/** The server of the first two tests (the second breaks it for good). */
const STATE_FILE = freshStateFile();
let server: ReturnType<typeof spawnServer>, url: string;
beforeAll(async () => {
  server = spawnServer({ ...ENV, STATE_FILE });
  url = await server.url();
});

// The child is never started here, so prices move only by buys.
test('ops racing a restart are refused with a clear error, never lost or applied twice', async () => {
  const pid = await healthyPid(url);
  const buyers = await connectWelcomed(url, clients, 'a', 'b', 'c');
  const a = buyers[0]!;
  const base = a.lastUpdate().stocks;
  const outcomes: ReturnType<TestClient['buy']>[] = [];
  /** Each client buys its own stock, then 10 ms pass; an unanswered buy fails a Promise.all. */
  async function buyRound(): Promise<void> {
    buyers.forEach((client, i) => outcomes.push(client.buy(STOCK_NAMES[i]!)));
    await delay(10);
  }

  for (let i = 0; i < 5; i++) await buyRound();
  await Promise.all(outcomes);
  const mark = a.events.mark;
  let ended = false;
  const back = a.waitForStatus(STATUS.tickerBack, { from: mark, timeoutMs: 10_000 });
  void back.finally(() => (ended = true)).catch(() => undefined);
  process.kill(pid, 'SIGKILL');
  while (!ended) await buyRound();
  await back;
  for (let i = 0; i < 10; i++) await buyRound();
  const acks = await Promise.all(outcomes);

  // Every buy was answered, in one of three ways; some while the child was down.
  const errors = acks.flatMap(({ ack }) => (ack.ok ? [] : [ack.error]));
  expect(errors.filter((error) => error !== RESTARTING && error !== DIED_PENDING)).toEqual([]);
  expect(errors).toContain(RESTARTING);

  // None applied twice, or refused yet applied, or acked yet missing (greetings: realtime.test).
  expect(acks.filter(({ ack }) => ack.ok).length).toBeGreaterThan(20);
  await expectBuysApplied(a, { from: mark }, base, acks);
  // /metrics counts the restart, and each answer under its outcome.
  const metrics = await scrape(url);
  const buys = (labels: object) =>
    valueOf(metrics, 'forkcast_ops_total', { op: 'buy', transport: 'socket', ...labels });
  expect([
    valueOf(metrics, 'forkcast_ticker_restarts_total'),
    buys({ result: 'ok' }),
    buys({ result: 'rejected', reason: 'unavailable' }),
  ]).toEqual([1, acks.length - errors.length, errors.length]);
});

// A regular file for a folder fails the next write (ENOTDIR; chmod would not stop root). /healthz
// meanwhile: ticker-supervisor.test.ts (degraded) and the crash loop below (503).
test('the state folder breaks while the server runs: after a buy it could not save, SIGTERM exits 1', async () => {
  const a = (await connectWelcomed(url, clients, 'a'))[0]!;
  const folder = path.dirname(STATE_FILE);
  rmSync(folder, { recursive: true });
  writeFileSync(folder, 'not a folder');
  const mark = a.events.mark;
  // Refused (ticker-supervisor.test.ts), its child replaced: wait until the new one is up.
  await a.buy('Apple');
  await a.waitForStatus(STATUS.tickerBack, { from: mark, timeoutMs: 10_000 });
  // A WebSocket that stops reading holds the HTTP close for its 1 s cut: the ticker's fails first.
  const wsUrl = `${url.replace('http', 'ws')}${SOCKET_PATH}/?EIO=4&transport=websocket`;
  const stalled = new WebSocket(wsUrl).on('error', () => undefined);
  await once(stalled, 'open');
  stalled.pause();
  // Still broken: the last state cannot be saved, so the shutdown cannot claim success.
  server.process.kill('SIGTERM');
  const unhandled = 'unhandled rejection, ignored';
  const { exit, said } = await server.ending(8_000, 'shutdown failed', unhandled);
  expect({ exit, said }).toEqual({ exit: { code: 1, signal: null }, said: [] });
});

const CRASH_DIR = mkdtempSync(path.join(tmpdir(), 'forkcast-crash-'));
const CRASH_FILE = path.join(CRASH_DIR, 'crash');
// Preloaded into the server's children: each exits at once while the crash file exists.
const FIXTURE = JSON.stringify(path.join(__dirname, '..', 'fixtures', 'crashing-ticker.js'));
const CRASHING = { NODE_OPTIONS: `--require ${FIXTURE}`, FORKCAST_CRASH_DIR: CRASH_DIR };
afterAll(() => rmSync(CRASH_DIR, { recursive: true, force: true }));

test('a running child that crashes in a loop is backed off without spinning the server, which recovers where it was', async () => {
  // Ticks a second apart, so that a child killed right after an update has none in flight.
  const server = spawnServer({ ...ENV, TICK_MS: '1000', ...CRASHING });
  const url = await server.url();
  const a = (await connectWelcomed(url, clients, 'a'))[0]!;
  const started = await a.start();
  await a.waitForUpdates(1, { from: started.index });
  const childPid = await healthyPid(url);
  writeFileSync(CRASH_FILE, '');
  await a.nextUpdate({ from: a.events.mark });
  const [last, mark, logMark] = [a.lastUpdate(), a.events.mark, server.logs.mark];
  const pid = server.process.pid ?? 0;
  const cpuBefore = cpuMs(pid);
  const t0 = performance.now();
  process.kill(childPid, 'SIGKILL');

  const lost = await a.waitForStatus(STATUS.tickerLost, { from: mark });
  expect(lost.status).toEqual({ message: STATUS.tickerLost, running: true });
  const down = await fetch(`${url}/healthz`);
  const downBody = { status: 'down', running: true, seq: last.seq, pid: null };
  expect([down.status, await down.json()]).toEqual([503, expect.objectContaining(downBody)]);
  // CPU until four crashing children died (restarts after 100, 200, 400, 800, now 1,600 ms).
  const restarts = () => linesWith(server.logs, 'ticker child lost; restarting', logMark);
  // Node takes up to a second to start a child on a busy machine.
  const dead = { from: logMark, timeoutMs: 15_000, what: 'four children forked and dead' };
  await server.logs.waitFor(() => restarts().length === 5, dead);
  const wall = performance.now() - t0;
  const cpuAfter = cpuMs(pid);
  if (cpuBefore && cpuAfter) {
    const own = (cpuAfter.own - cpuBefore.own) / wall;
    expect(own).toBeLessThan(0.3);
    // The crashing children themselves (node start-up, ~50 ms each) do not add up to a spin.
    expect(own + (cpuAfter.children - cpuBefore.children) / wall).toBeLessThan(0.5);
  }

  // The next child is healthy: the server recovers by itself, still running.
  rmSync(CRASH_FILE);
  const back = await a.waitForStatus(STATUS.tickerBack, { from: mark, timeoutMs: 10_000 });
  expect(back.status).toEqual({ message: STATUS.tickerBack, running: true });
  await healthyPid(url);
});
