/**
 * A ticker child that stops answering without dying, frozen with SIGSTOP: /healthz says so
 * within a heartbeat or two, the ops sent to it are refused with an error saying they were not
 * applied, the child is killed and replaced from the last committed state, everyone hears
 * "lost" then "back", and the refused ops stay unapplied. Then a child SIGKILLed with an op in
 * its pipe: that op is refused the same way. The server is in-process with a real child and a
 * real state file; its supervisor pings and times out ops faster than main.ts's (1 s and 3 s),
 * which test/unit/ticker-supervisor.test.ts shows are the same mechanism.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { STATUS, type BuyAck, type RunAck, type UpdatePayload } from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';
import { createApp, type ForkcastApp } from '../../server/app';
import { createStateFile } from '../../server/state-file';
import { TickerSupervisor } from '../../server/ticker-supervisor';
import { printFigures, recordFigure } from '../helpers/figures';
import { CHILD_PATH } from '../helpers/forked-ticker';
import { healthyPid } from '../helpers/guards';
import { capturingLogger } from '../helpers/logs';
import { grown, priceOf } from '../helpers/prices';
import { processRunning, statFields, waitForProcessGone } from '../helpers/processes';
import { delay, withDeadline } from '../helpers/recorder';
import {
  expectContiguousSeq,
  isStatus,
  isUpdate,
  connectWelcomed,
  type TestClient,
} from '../helpers/server';

const STUCK =
  'the ticker did not answer in time; it is being restarted and the operation was not applied';
const DIED = 'the ticker restarted before answering; try again';
const OP_TIMEOUT_MS = 1_000;
const HEARTBEAT_MS = 250;
/** A ping or op is answered late once it is a heartbeat old: a few heartbeats, for a loaded machine. */
const DOWN_WITHIN_MS = 2_000;

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
  for (const client of clients) expectContiguousSeq(client);
  clients = [];
  apps = [];
  jest.restoreAllMocks();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(() => printFigures('stuck-child.test.ts'));

const connect = (url: string, ...names: string[]): Promise<TestClient[]> =>
  connectWelcomed(url, clients, ...names);

/** An in-process server with a real state file, as main.ts wires a single node. */
async function startApp(
  opTimeoutMs = OP_TIMEOUT_MS,
): Promise<{ forkcast: ForkcastApp; url: string }> {
  const { logger } = capturingLogger();
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-stuck-'));
  tempDirs.push(dir);
  const store = createStateFile({ path: path.join(dir, 'state.json'), logger });
  const ticker = new TickerSupervisor({
    childPath: CHILD_PATH,
    tickMs: 100,
    initialState: await store.open(),
    logger,
    store,
    opTimeoutMs,
    heartbeatMs: HEARTBEAT_MS,
  });
  const forkcast = createApp({ logger, tickMs: 100, ticker, stateStore: store });
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

/** An op with its ack and how long that took, waited for past the op timeout. */
function ask<R>(
  what: string,
  emit: (callback: (result: R) => void) => void,
): Promise<{ ack: R; tookMs: number }> {
  const sentAt = performance.now();
  const acked = new Promise<{ ack: R; tookMs: number }>((resolve) =>
    emit((ack) => resolve({ ack, tookMs: performance.now() - sentAt })),
  );
  return withDeadline(acked, 5_000, `the ack of ${what}`);
}

const buy = (client: TestClient, name: StockName) =>
  ask<BuyAck>(`${client.name}: buy ${name}`, (callback) =>
    client.socket.emit('buy', name, callback),
  );
const start = (client: TestClient) =>
  ask<RunAck>(`${client.name}: start`, (callback) => client.socket.emit('start', callback));

/** Each client heard "lost" and then "back" (and no other status) since its mark. */
async function expectLostThenBack(marked: [TestClient, number][]): Promise<void> {
  for (const [client, mark] of marked) {
    await client.waitForStatus(STATUS.tickerBack, { from: mark });
    const statuses = client.events
      .since(mark)
      .filter(isStatus)
      .map((event) => event.status);
    expect({ client: client.name, statuses }).toEqual({
      client: client.name,
      statuses: [
        { message: STATUS.tickerLost, running: false },
        { message: STATUS.tickerBack, running: false },
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
  await expect(first[0].events.quietFor(300, isUpdate, first[1])).resolves.toEqual([]);
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
  const { url } = await startApp();
  const oldPid = await healthyPid(url);
  const [a, b] = await connect(url, 'a', 'b');
  if (!a || !b) throw new Error('unreachable');
  const before = a.lastUpdate();
  expect(before.running).toBe(false);
  const marked: [TestClient, number][] = [
    [a, a.events.mark],
    [b, b.events.mark],
  ];

  hung.add(oldPid);
  process.kill(oldPid, 'SIGSTOP');
  const stoppedAt = performance.now();
  const bought = buy(a, 'Apple');
  const started = start(b);
  const down = await waitForHealth(url, (h) => h.status === 503, DOWN_WITHIN_MS, '503');
  recordFigure('SIGSTOP -> /healthz 503', performance.now() - stoppedAt);
  expect(down.body).toMatchObject({ ok: false, status: 'down', running: false });

  expect([(await bought).ack, (await started).ack]).toEqual([
    { ok: false, error: STUCK },
    { ok: false, error: STUCK },
  ]);
  const replaced = await waitForHealth(
    url,
    (h) => h.status === 200 && h.body.pid !== oldPid,
    3_000,
    'a new ticker child in /healthz',
  );
  recordFigure('SIGSTOP -> replaced', performance.now() - stoppedAt);
  expect(replaced.body).toMatchObject({ ok: true, status: 'ok', running: false });
  expect(processRunning(replaced.body.pid ?? 0)).toBe(true);

  // The stuck child was killed, not abandoned: waking it up finds nobody (or a zombie).
  await waitForProcessGone(oldPid, 1_000);
  let woken = 'ESRCH';
  try {
    process.kill(oldPid, 'SIGCONT');
    woken = statFields(oldPid)?.[0] === 'Z' ? 'ESRCH' : 'alive';
  } catch {
    // Gone.
  }
  expect(woken).toBe('ESRCH');

  await expectLostThenBack(marked);
  await expectUnchanged(url, marked, before, 'Apple');
});

// A frozen child cannot answer, so the op is surely still pending when the kill comes, well
// before its timeout (main.ts's 3 s here): the death, not the timeout, refuses it.
test('a child SIGKILLed with an op pending: the op is refused, not applied, and the child replaced', async () => {
  const { forkcast, url } = await startApp(3_000);
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

  await expectLostThenBack(marked);
  const replaced = await health(url);
  expect(replaced).toMatchObject({ status: 200, body: { ok: true, running: false } });
  expect(replaced.body.pid).not.toBe(oldPid);
  await expectUnchanged(url, marked, before, 'Facebook');
});
