/**
 * Supervision against real processes: the ticker child of a real server process is SIGKILLed
 * (running, then stopped) or frozen with SIGSTOP, ops race the restart, the server itself is
 * SIGKILLed, and a child that crashes in a loop (test/fixtures/crashing-ticker.js) is backed
 * off without taking the server down or spinning the CPU. The timings and the backoff itself
 * are test/unit/ticker-supervisor.test.ts's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';

import { STATUS, type BuyAck, type Stock } from '../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { createApp, type ForkcastApp } from '../../server/app';
import { capturingLogger, linesWith } from '../helpers/logs';
import { decayAll, grown, priceOf } from '../helpers/prices';
import {
  cleanUpServers,
  spawnTracked,
  processRunning,
  reapedChildrenCpuMs,
  waitForProcessGone,
} from '../helpers/processes';
import { delay, withDeadline } from '../helpers/recorder';
import {
  expectContiguousSeq,
  isStatus,
  isUpdate,
  connectWelcomed,
  type TestClient,
} from '../helpers/server';
import type { ServerProcess } from '../helpers/server-process';

jest.setTimeout(20_000);

const RESTARTING = 'the ticker is restarting; try again in a moment';
const DIED_PENDING = 'the ticker restarted before answering; try again';
const STUCK =
  'the ticker did not answer in time; it is being restarted and the operation was not applied';
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'crashing-ticker.js');

let clients: TestClient[] = [];
/** The server of the test running, or the one a describe shares. */
let server: ServerProcess;
let url: string;
let apps: ForkcastApp[] = [];
const tempDirs: string[] = [];

async function spawn(env: Record<string, string>): Promise<number> {
  server = spawnTracked({ LOG_LEVEL: 'info', ...env });
  // Not listening(): a busy machine can take more than its 5 s to start a server.
  url = await server.url(15_000);
  return (await health(url)).body.pid ?? 0;
}

afterEach(async () => {
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.close()));
  for (const client of clients) expectContiguousSeq(client);
  clients = [];
  apps = [];
  delete process.env['FORKCAST_CRASH_DIR'];
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const connect = (url: string, ...names: string[]): Promise<TestClient[]> =>
  connectWelcomed(url, clients, ...names);

interface Health {
  ok: boolean;
  running: boolean;
  seq: number;
  uptime: number;
  pid: number | null;
}

async function health(url: string): Promise<{ status: number; body: Health }> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as Health };
}

/** The pid of the next child the server logs as forked, at or after log index `from`. */
async function nextForkedPid(server: ServerProcess, from: number): Promise<number> {
  const line = await server.logs.waitFor((item) => item['msg'] === 'ticker child forked', {
    from,
    timeoutMs: 3_000,
    what: 'a new ticker child',
  });
  const pid = line['pid'];
  if (typeof pid !== 'number') throw new Error(`no pid in ${JSON.stringify(line)}`);
  return pid;
}

describe('a server per test', () => {
  afterEach(cleanUpServers);

  test('a SIGKILLed ticker child is replaced: running, prices and seq tick on without a start; stopped, it stays stopped; a SIGKILLed server leaves no child', async () => {
    const tickerPid = await spawn({ TICK_MS: '100' });
    const [a] = await connect(url, 'a');
    if (!a) throw new Error('unreachable');
    const started = await a.start();
    await a.waitForUpdates(2, { from: started.index });

    // Killed right after an update, so none is in flight.
    await a.nextUpdate({ from: a.events.mark });
    const from = a.events.mark;
    const killedAt = performance.now();
    process.kill(tickerPid, 'SIGKILL');
    const pid = await nextForkedPid(server, server.logs.mark);
    // The client heard of the outage, and of its end, with no prices in between.
    const lost = a.events.items.indexOf(await a.waitForStatus(STATUS.tickerLost, { from }));
    const back = a.events.items.indexOf(await a.waitForStatus(STATUS.tickerBack, { from }));
    expect(back).toBeGreaterThan(lost);
    expect(a.events.items.slice(lost, back).filter(isUpdate)).toEqual([]);
    // Then exactly one more tick of decay on the last prices before the outage; seq goes on.
    const last = a.lastUpdate(lost);
    const next = await a.events.waitFor(isUpdate, { from: back, timeoutMs: 3_000, what: 'a tick' });
    expect(next.at - killedAt).toBeLessThan(3_000);
    expect(next.update).toEqual({
      stocks: decayAll(last.stocks),
      running: true,
      seq: last.seq + 1,
      ts: expect.any(Number),
    });
    expect(processRunning(tickerPid)).toBe(false);
    // Nobody sent a second start: the one "Processing" is the test's own.
    expect(a.statuses.filter((status) => status.message === STATUS.started)).toHaveLength(1);

    // Stopped, the next child stays stopped (its state: persistence.test.ts, unit tests).
    expect((await a.stop()).ack).toEqual({ ok: true, running: false });
    const mark = a.events.mark;
    process.kill(pid, 'SIGKILL');
    await a.waitForStatus(STATUS.tickerBack, { from: mark });
    expect(a.statuses.slice(-2)).toEqual([
      { message: STATUS.tickerLost, running: false },
      { message: STATUS.tickerBack, running: false },
    ]);
    await expect(a.events.quietFor(300, isUpdate, a.events.mark)).resolves.toEqual([]);

    // Ticking again, the server SIGKILLed: the child sees its IPC channel close and exits.
    await a.start();
    const childPid = (await health(url)).body.pid ?? 0;
    server.process.kill('SIGKILL');
    await expect(server.exited).resolves.toEqual({ code: null, signal: 'SIGKILL' });
    await waitForProcessGone(childPid, 1_000);
  });
});

// The child is never started here, so the prices move only by the tests' buys.
describe('one server: its child frozen, then killed under a stream of ops', () => {
  beforeAll(() => spawn({ TICK_MS: '1000', OPS_PER_SECOND: '1000' }));
  afterAll(cleanUpServers);

  // The supervisor's watchdog (1 s) gives up on a request 3 s old: the ack comes past the test
  // client's own 3 s deadline, so the buy is sent on the socket itself.
  test('a SIGSTOPped child: a buy is refused, not applied, and the child killed and replaced', async () => {
    const tickerPid = (await health(url)).body.pid ?? 0;
    const [a] = await connect(url, 'a');
    if (!a) throw new Error('unreachable');
    const before = a.lastUpdate();
    const mark = a.events.mark;
    const logMark = server.logs.mark;
    process.kill(tickerPid, 'SIGSTOP');
    try {
      const ack = new Promise((resolve) => a.socket.emit('buy', 'Apple', resolve));
      await expect(withDeadline(ack, 8_000, 'the ack of the stuck buy')).resolves.toEqual({
        ok: false,
        error: STUCK,
      });
      // Killed, not abandoned: a stopped process still dies of SIGKILL.
      await waitForProcessGone(tickerPid, 2_000);
    } finally {
      if (processRunning(tickerPid)) process.kill(tickerPid, 'SIGKILL');
    }
    expect(await nextForkedPid(server, logMark)).not.toBe(tickerPid);
    await a.waitForStatus(STATUS.tickerBack, { from: mark });
    // Nothing was applied: no update, a late joiner gets the state from before, and the next buy
    // lands one buy above it.
    expect(a.events.since(mark).filter(isUpdate)).toEqual([]);
    const [late] = await connect(url, 'late');
    expect(late?.updates).toEqual([before]);
    expect((await a.buy('Apple')).ack).toEqual({
      ok: true,
      stock: { name: 'Apple', price: grown(priceOf(before.stocks, 'Apple')) },
    });
  });

  test('ops racing a restart are refused with a clear error, never lost or applied twice', async () => {
    const tickerPid = (await health(url)).body.pid ?? 0;
    const buyers = await connect(url, 'a', 'b', 'c');
    const [a] = buyers;
    if (!a) throw new Error('unreachable');
    const base = a.lastUpdate().stocks;

    const outcomes: Promise<{ name: StockName; ack: BuyAck }>[] = [];
    let round = 0;
    /** Every client buys one stock (a different one each round), then 10 ms pass. */
    async function buyRound(): Promise<void> {
      for (const client of buyers) {
        const name = STOCK_NAMES[round++ % STOCK_NAMES.length] ?? 'Apple';
        // A buy left unanswered rejects, and fails the Promise.all below.
        outcomes.push(client.buy(name).then(({ ack }) => ({ name, ack })));
      }
      await delay(10);
    }

    for (let i = 0; i < 5; i++) await buyRound();
    await Promise.all(outcomes);
    const mark = a.events.mark;
    let ended = false;
    const back = a.waitForStatus(STATUS.tickerBack, { from: mark, timeoutMs: 5_000 });
    void back.then(
      () => (ended = true),
      () => (ended = true),
    );
    process.kill(tickerPid, 'SIGKILL');
    while (!ended) await buyRound();
    await back;
    for (let i = 0; i < 10; i++) await buyRound();
    const acks = await Promise.all(outcomes);

    // Every buy was answered, and only in one of three ways.
    const errors = acks.flatMap(({ ack }) => (ack.ok ? [] : [ack.error]));
    expect(errors.filter((error) => error !== RESTARTING && error !== DIED_PENDING)).toEqual([]);
    // Some came while the child was down (refused at once: the supervisor's unit tests).
    expect(errors).toContain(RESTARTING);

    // The k-th acknowledged buy of a stock has the price of exactly k buys: none was applied
    // twice, none that was refused was applied, none that was acknowledged went missing.
    const expected: Stock[] = base.map((stock) => {
      const prices = acks
        .flatMap(({ name, ack }) => (ack.ok && name === stock.name ? [ack.stock.price] : []))
        .sort((x, y) => x - y);
      expect(prices).toEqual(prices.map((_price, k) => grown(stock.price, k + 1)));
      return { name: stock.name, price: grown(stock.price, prices.length) };
    });
    expect(acks.filter(({ ack }) => ack.ok).length).toBeGreaterThan(20);

    // And that is the state everyone ends up with.
    await a.events.waitFor(
      (event) =>
        isUpdate(event) && JSON.stringify(event.update.stocks) === JSON.stringify(expected),
      { from: mark, timeoutMs: 3_000, what: 'the update with every acknowledged buy' },
    );
    const [late] = await connect(url, 'late');
    expect(late?.updates[0]?.stocks).toEqual(expected);
  });
});

// The fixture child (test/fixtures/crashing-ticker.js) reads its plan at every start.
test('a child that crashes in a loop is backed off: the server stays up and idle, and recovers', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-crash-'));
  tempDirs.push(dir);
  const plan = (crashes: number | 'always'): void =>
    writeFileSync(path.join(dir, 'plan.json'), JSON.stringify({ crashes }));
  plan(0);
  // The supervisor forks with this process's environment, so the fixture finds its plan.
  process.env['FORKCAST_CRASH_DIR'] = dir;
  const { logger, lines } = capturingLogger();
  const forkcast = createApp({ logger, tickMs: 100, tickerChildPath: FIXTURE });
  apps.push(forkcast);
  const url = `http://127.0.0.1:${(await forkcast.listen(0, '127.0.0.1')).port}`;
  const [a] = await connect(url, 'a');
  if (!a) throw new Error('unreachable');
  const started = await a.start();
  await a.waitForUpdates(1, { from: started.index });

  // From now on every new child exits at once. Killed right after an update, so none is in flight.
  plan('always');
  await a.nextUpdate({ from: a.events.mark });
  const last = a.lastUpdate();
  const mark = a.events.mark;
  const logMark = lines.mark;
  // The server shares this process with jest: a collection of jest's heap is not the server's.
  let collectingMs = 0;
  const collections = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) collectingMs += entry.duration;
  });
  collections.observe({ entryTypes: ['gc'] });
  const cpuBefore = process.cpuUsage();
  const childrenBefore = reapedChildrenCpuMs();
  const t0 = performance.now();
  process.kill(forkcast.ticker.pid ?? 0, 'SIGKILL');

  const lost = await a.waitForStatus(STATUS.tickerLost, { from: mark });
  expect(lost.status).toEqual({ message: 'Ticker restarting: prices paused', running: true });
  await expect(health(url)).resolves.toMatchObject({
    status: 503,
    body: { ok: false, status: 'down', running: true, seq: last.seq, pid: null },
  });
  // Ops meanwhile are refused at once: the supervisor's unit tests.

  // The CPU is measured until four crashing children have died: the kill's restart and
  // theirs waiting 100, 200, 400, 800 and now 1,600 ms.
  const delays = () =>
    linesWith(lines, 'ticker child lost; restarting', logMark).map((line) => line['restartInMs']);
  await lines.waitFor(() => delays().length === 5, {
    from: logMark,
    // Node takes up to a second to start a child on a busy machine.
    timeoutMs: 10_000,
    what: 'four children forked and dead',
  });
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpuBefore);
  const childrenAfter = reapedChildrenCpuMs();
  // Entries reach the observer asynchronously: let the ones of the window arrive.
  await new Promise((resolve) => setImmediate(resolve));
  collections.disconnect();
  const serverCpu = ((cpu.user + cpu.system) / 1_000 - collectingMs) / wall;
  expect(delays()).toEqual([100, 200, 400, 800, 1_600]);
  expect(linesWith(lines, 'ticker child forked', logMark)).toHaveLength(4);
  expect(serverCpu).toBeLessThan(0.3);
  // The crashing children themselves (node start-up, ~50 ms each) do not add up to a spin.
  if (childrenBefore !== null && childrenAfter !== null)
    expect(serverCpu + (childrenAfter - childrenBefore) / wall).toBeLessThan(0.5);
  // One outage, announced once; no prices while it lasts.
  expect(a.events.since(mark).filter(isStatus)).toEqual([lost]);
  expect(a.events.since(mark).filter(isUpdate)).toEqual([]);

  // The next child is healthy: the server recovers by itself, where it was.
  plan(0);
  const back = await a.waitForStatus(STATUS.tickerBack, { from: mark, timeoutMs: 6_000 });
  expect(back.status).toEqual({ message: 'Ticker back: prices live', running: true });
  await expect(a.nextUpdate({ from: mark })).resolves.toEqual({
    stocks: decayAll(last.stocks),
    running: true,
    seq: last.seq + 1,
    ts: expect.any(Number),
  });
  await expect(health(url)).resolves.toMatchObject({ status: 200, body: { ok: true } });
});
