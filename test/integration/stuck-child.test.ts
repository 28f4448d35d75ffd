/**
 * A ticker child that stops answering without dying: frozen with SIGSTOP (a real server
 * process), or spinning in a busy loop on its first buy (test/fixtures/stuck-ticker.js, an
 * in-process server). /healthz says so within a heartbeat or two, the ops sent to it are
 * refused with an error saying they were not applied, the child is killed and replaced from the
 * last committed state, everyone hears "lost" then "back", and the refused ops stay unapplied.
 * Last, a child SIGKILLed with an op in its pipe: that op is refused the same way.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { STATUS, type BuyAck, type RunAck, type UpdatePayload } from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';
import { createApp, type ForkcastApp } from '../../server/app';
import { createStateFile } from '../../server/state-file';
import { printFigures, recordFigure } from '../helpers/figures';
import { healthyPid } from '../helpers/guards';
import { capturingLogger } from '../helpers/logs';
import { grown, priceOf } from '../helpers/prices';
import {
  cleanUpServers,
  processRunning,
  spawnTracked,
  statFields,
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

jest.setTimeout(20_000);

const STUCK =
  'the ticker did not answer in time; it is being restarted and the operation was not applied';
const DIED = 'the ticker restarted before answering; try again';
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'stuck-ticker.js');
/** The server pings every second and calls a child down once a ping or op is 1 s old. */
const DOWN_WITHIN_MS = 3_000;
/** The op timeout (3 s) plus room for a loaded machine. */
const REFUSED_WITHIN_MS = 5_000;

let clients: TestClient[] = [];
let apps: ForkcastApp[] = [];
const tempDirs: string[] = [];
/** Children made to hang: killed after each test, should one outlive a failure. */
const hung = new Set<number>();

afterEach(async () => {
  for (const pid of hung) if (processRunning(pid)) process.kill(pid, 'SIGKILL');
  hung.clear();
  for (const client of clients) client.close();
  await Promise.all(apps.map((app) => app.close()));
  await cleanUpServers();
  for (const client of clients) expectContiguousSeq(client);
  clients = [];
  apps = [];
  jest.restoreAllMocks();
  delete process.env['FORKCAST_STUCK_DIR'];
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(() => printFigures('stuck-child.test.ts'));

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-stuck-'));
  tempDirs.push(dir);
  return dir;
}

const connect = (url: string, ...names: string[]): Promise<TestClient[]> =>
  connectWelcomed(url, clients, ...names);

/** An in-process server with a real state file, as main.ts wires a single node. */
async function startApp(tickerChildPath?: string): Promise<{ forkcast: ForkcastApp; url: string }> {
  const { logger } = capturingLogger();
  const stateFile = createStateFile({ path: path.join(tempDir(), 'state.json'), logger });
  const initialState = await stateFile.open();
  const forkcast = createApp({
    logger,
    tickMs: 100,
    initialState,
    stateStore: stateFile,
    ...(tickerChildPath ? { tickerChildPath } : {}),
  });
  apps.push(forkcast);
  const address = await forkcast.listen(0, '127.0.0.1');
  return { forkcast, url: `http://127.0.0.1:${address.port}` };
}

interface Health {
  status: number;
  body: { ok: boolean; status: string; running: boolean; seq: number; pid: number | null };
}

async function health(url: string): Promise<Health> {
  const response = await fetch(`${url}/healthz`);
  return { status: response.status, body: (await response.json()) as Health['body'] };
}

/** Polls /healthz (nothing pushes it) until `done`, or fails at the deadline. */
async function waitForHealth(
  url: string,
  done: (health: Health) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Health> {
  const deadline = performance.now() + timeoutMs;
  let last: Health | null = null;
  while (performance.now() < deadline) {
    last = await health(url);
    if (done(last)) return last;
    await delay(25);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`,
  );
}

/** Two greeted clients on a stopped ticker, with where each one's events stood. */
async function twoWatchers(url: string) {
  const [a, b] = await connect(url, 'a', 'b');
  if (!a || !b) throw new Error('unreachable');
  const before = a.lastUpdate();
  expect(before.running).toBe(false);
  const marked: [TestClient, number][] = [
    [a, a.events.mark],
    [b, b.events.mark],
  ];
  return { a, b, before, marked };
}

/** The buy and the start sent to the stuck child are refused, and a new child takes over. */
async function expectRefusedThenReplaced(
  bought: Promise<{ ack: unknown; tookMs: number }>,
  started: Promise<{ ack: unknown; tookMs: number }>,
  url: string,
  oldPid: number,
  how: string,
): Promise<Health> {
  const [buyAck, startAck] = await Promise.all([bought, started]);
  recordFigure(`${how} -> buy refused`, buyAck.tookMs);
  expect([buyAck.ack, startAck.ack]).toEqual([
    { ok: false, error: STUCK },
    { ok: false, error: STUCK },
  ]);
  return waitForHealth(
    url,
    (h) => h.status === 200 && h.body.pid !== oldPid,
    3_000,
    'a new ticker child in /healthz',
  );
}

/**
 * An op with its ack, waited for longer than TestClient's 3 s: a refusal for a stuck child
 * comes when the op times out, 3 s after it (or a ping before it) was sent.
 */
function ask<R>(
  what: string,
  emit: (callback: (result: R) => void) => void,
): Promise<{ ack: R; tookMs: number }> {
  const sentAt = performance.now();
  const acked = new Promise<{ ack: R; tookMs: number }>((resolve) =>
    emit((ack) => resolve({ ack, tookMs: performance.now() - sentAt })),
  );
  return withDeadline(acked, REFUSED_WITHIN_MS, `the ack of ${what}`);
}

const buy = (client: TestClient, name: StockName) =>
  ask<BuyAck>(`${client.name}: buy ${name}`, (callback) =>
    client.socket.emit('buy', name, callback),
  );
const start = (client: TestClient) =>
  ask<RunAck>(`${client.name}: start`, (callback) => client.socket.emit('start', callback));

/** Signals a process that should be gone: 'ESRCH', or 'zombie' for one not reaped yet. */
function signalGone(pid: number, signal: NodeJS.Signals): string {
  try {
    process.kill(pid, signal);
  } catch (error) {
    return String((error as NodeJS.ErrnoException).code);
  }
  return statFields(pid)?.[0] === 'Z' ? 'zombie' : 'alive';
}

/** Each client heard "lost" and then "back" (and no other status) since its mark. */
function expectLostThenBack(marked: [TestClient, number][], running: boolean): void {
  for (const [client, mark] of marked) {
    const statuses = client.events
      .since(mark)
      .filter(isStatus)
      .map((event) => event.status);
    expect({ client: client.name, statuses }).toEqual({
      client: client.name,
      statuses: [
        { message: STATUS.tickerLost, running },
        { message: STATUS.tickerBack, running },
      ],
    });
  }
}

/**
 * The refused ops were not applied: no update at all while the stopped ticker stays quiet
 * (a refused start would tick, a refused buy would be announced), a late joiner gets exactly
 * the state from before, and the next buy lands one buy above that state's price.
 */
async function expectUnchanged(
  url: string,
  marked: [TestClient, number][],
  before: UpdatePayload,
  name: StockName,
): Promise<void> {
  const [first] = marked;
  if (!first) throw new Error('unreachable');
  // Several tick intervals (100 ms) and buy conflation windows (20 ms).
  await expect(first[0].events.quietFor(500, isUpdate, first[1])).resolves.toEqual([]);
  for (const [client, mark] of marked)
    expect(client.events.since(mark).filter(isUpdate)).toEqual([]);
  const [late] = await connect(url, 'late');
  expect(late?.updates).toEqual([before]);
  await expect(health(url)).resolves.toMatchObject({
    status: 200,
    body: { ok: true, running: false, seq: before.seq },
  });
  const next = await buy(first[0], name);
  expect(next.ack).toEqual({
    ok: true,
    stock: { name, price: grown(priceOf(before.stocks, name)) },
  });
}

test('a SIGSTOPped child: /healthz down, a buy and a start refused, the child replaced, nothing applied', async () => {
  const server = spawnTracked({ LOG_LEVEL: 'info', TICK_MS: '100' });
  const { url } = await server.listening();
  const oldPid = await healthyPid(url);
  const { a, b, before, marked } = await twoWatchers(url);

  hung.add(oldPid);
  process.kill(oldPid, 'SIGSTOP');
  const stoppedAt = performance.now();
  const bought = buy(a, 'Apple');
  const started = start(b);
  const down = await waitForHealth(url, (h) => h.status === 503, DOWN_WITHIN_MS, '503');
  recordFigure('SIGSTOP -> /healthz 503', performance.now() - stoppedAt);
  expect(down.body).toMatchObject({ ok: false, status: 'down', running: false });

  const replaced = await expectRefusedThenReplaced(bought, started, url, oldPid, 'SIGSTOP');
  recordFigure('SIGSTOP -> replaced', performance.now() - stoppedAt);
  expect(replaced.body).toMatchObject({ ok: true, status: 'ok', running: false });
  expect(processRunning(replaced.body.pid ?? 0)).toBe(true);

  // The stuck child was killed, not abandoned: waking it up finds nobody.
  await waitForProcessGone(oldPid, 1_000);
  expect(['ESRCH', 'zombie']).toContain(signalGone(oldPid, 'SIGCONT'));

  await a.waitForStatus(STATUS.tickerBack, { from: marked[0]![1] });
  await b.waitForStatus(STATUS.tickerBack, { from: marked[1]![1] });
  expectLostThenBack(marked, false);
  await expectUnchanged(url, marked, before, 'Apple');
});

test('a child spinning in a busy loop on a buy: the same refusal, replacement and nothing applied', async () => {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'armed'), '');
  // The supervisor forks with this process's environment, so the fixture finds its folder.
  process.env['FORKCAST_STUCK_DIR'] = dir;
  const { forkcast, url } = await startApp(FIXTURE);
  const oldPid = await healthyPid(url);
  const { a, b, before, marked } = await twoWatchers(url);

  hung.add(oldPid);
  const sentAt = performance.now();
  const bought = buy(a, 'Microsoft');
  // The child hangs on the buy; once that shows, the start surely reaches a hung child.
  const down = await waitForHealth(url, (h) => h.status === 503, DOWN_WITHIN_MS, '503');
  recordFigure('busy loop -> /healthz 503', performance.now() - sentAt);
  expect(down.body).toMatchObject({ ok: false, status: 'down', running: false });
  expect(readFileSync(path.join(dir, 'spinning'), 'utf8').trim()).toBe(String(oldPid));
  const started = start(b);

  const replaced = await expectRefusedThenReplaced(bought, started, url, oldPid, 'busy loop');
  expect(replaced.body).toMatchObject({ ok: true, running: false, pid: forkcast.ticker.pid });
  await waitForProcessGone(oldPid, 1_000);

  await a.waitForStatus(STATUS.tickerBack, { from: marked[0]![1] });
  await b.waitForStatus(STATUS.tickerBack, { from: marked[1]![1] });
  expectLostThenBack(marked, false);
  await expectUnchanged(url, marked, before, 'Microsoft');
});

// A frozen child cannot answer, so the op is surely still pending when the kill comes, well
// before its 3 s timeout: the death, not the timeout, refuses it.
test('a child SIGKILLed with an op pending: the op is refused, not applied, and the child replaced', async () => {
  const { forkcast, url } = await startApp();
  const ticker = forkcast.ticker;
  const oldPid = await healthyPid(url);
  const [a] = await connect(url, 'a');
  if (!a) throw new Error('unreachable');
  const before = a.lastUpdate();
  const marked: [TestClient, number][] = [[a, a.events.mark]];

  const original = ticker.buy.bind(ticker);
  let relayed: () => void = () => undefined;
  const relayedToChild = new Promise<void>((resolve) => (relayed = resolve));
  jest.spyOn(ticker, 'buy').mockImplementation((name) => {
    const reply = original(name);
    relayed();
    return reply;
  });

  hung.add(oldPid);
  process.kill(oldPid, 'SIGSTOP');
  const bought = buy(a, 'Facebook');
  await withDeadline(relayedToChild, 2_000, 'the buy to reach the supervisor');
  process.kill(oldPid, 'SIGKILL');
  const { ack, tookMs } = await bought;
  expect(ack).toEqual({ ok: false, error: DIED });
  expect(tookMs).toBeLessThan(2_000);
  jest.restoreAllMocks();

  await a.waitForStatus(STATUS.tickerBack, { from: marked[0]![1] });
  const replaced = await health(url);
  expect(replaced).toMatchObject({ status: 200, body: { ok: true, running: false } });
  expect(replaced.body.pid).not.toBe(oldPid);
  expectLostThenBack(marked, false);
  await expectUnchanged(url, marked, before, 'Facebook');
});
