/**
 * The supervisor with a fake fork and Jest's fake clock: op ids and replies, timeouts, restart
 * with backoff and state handoff, close. No processes.
 */
import type { UpdatePayload } from '../../protocol/events';
import type { ChildMessage } from '../../protocol/ipc';
import { createLogger } from '../../server/logger';
import type { SavedState } from '../../server/state-file';
import { TickerSupervisor, type SupervisorOptions } from '../../server/ticker-supervisor';
import { fakeFork, type FakeChild } from '../helpers/fake-child';
import { decayAll, grown, stateOf, withBuy } from '../helpers/prices';

const RESTARTING = 'the ticker is restarting; try again in a moment';

beforeEach(() => {
  jest.useFakeTimers({ now: 1_700_000_000_000 });
});

afterEach(() => {
  jest.useRealTimers();
});

function setup(options: Partial<SupervisorOptions> = {}) {
  const forks = fakeFork();
  const supervisor = new TickerSupervisor({
    childPath: '/x/dist/ticker/main.js',
    tickMs: 250,
    initialState: stateOf(),
    logger: createLogger('silent'),
    fork: forks.fork,
    ...options,
  });
  const events: (['update', UpdatePayload] | ['lost', string] | ['back'])[] = [];
  supervisor.on('update', (update) => events.push(['update', update]));
  supervisor.on('lost', (reason) => events.push(['lost', reason]));
  supervisor.on('back', () => events.push(['back']));
  return { supervisor, forks, events };
}

/** Answers the init the child got with ready, as the real child does. */
function ready(child: FakeChild): UpdatePayload {
  const { state } = child.lastSent('init');
  child.say({ type: 'ready', state } satisfies ChildMessage);
  return state;
}

async function opened(options: Partial<SupervisorOptions> = {}) {
  const harness = setup(options);
  const opening = harness.supervisor.open();
  ready(harness.forks.latest());
  await opening;
  return harness;
}

/** The id of the last op the parent sent to `child`. */
function lastOpId(child: FakeChild): number {
  const op = child.sent.at(-1);
  if (!op || op.type === 'init' || op.type === 'delivered') throw new Error('no op sent');
  return op.id;
}

test('open forks the compiled child without inherited flags and hands it the state', async () => {
  const initialState = stateOf({ seq: 4 });
  const { supervisor, forks } = setup({ initialState });
  expect(forks.calls).toEqual([]);
  const opening = supervisor.open();
  expect(forks.calls).toHaveLength(1);
  const [call] = forks.calls;
  expect(call?.modulePath).toBe('/x/dist/ticker/main.js');
  expect(call?.args).toEqual([]);
  expect(call?.options).toMatchObject({ execArgv: [], serialization: 'json' });
  expect(forks.latest().sent).toEqual([
    { type: 'init', state: initialState, tickMs: 250, unannounced: false },
  ]);
  expect(supervisor.pid).toBeUndefined();
  // Ops before the child is ready are refused.
  await expect(supervisor.start()).resolves.toEqual({ ok: false, error: RESTARTING });
  ready(forks.latest());
  await opening;
  expect(supervisor.pid).toBe(forks.latest().pid);
  // A second open does not fork again.
  await supervisor.open();
  expect(forks.calls).toHaveLength(1);
});

test('delivered() passes the notice to a ready child, and drops it when there is none', async () => {
  const { supervisor, forks } = setup();
  supervisor.delivered(1);
  const opening = supervisor.open();
  supervisor.delivered(2);
  ready(forks.latest());
  await opening;
  supervisor.delivered(3);
  expect(forks.latest().sent.filter((message) => message.type === 'delivered')).toEqual([
    { type: 'delivered', seq: 3 },
  ]);
  forks.latest().exit(1, null);
  supervisor.delivered(4);
  expect(forks.calls).toHaveLength(1);
  await supervisor.close();
});

test('each op gets its own id and its own reply, in any order', async () => {
  const { supervisor, forks } = await opened();
  const child = forks.latest();
  const start = supervisor.start();
  const startId = lastOpId(child);
  const buy = supervisor.buy('Apple');
  const buyId = lastOpId(child);
  expect(buyId).not.toBe(startId);
  expect(child.sent.slice(1)).toEqual([
    { type: 'start', id: startId },
    { type: 'buy', id: buyId, name: 'Apple' },
  ]);
  child.say({
    type: 'reply',
    id: buyId,
    reply: { ok: true, running: true, stock: { name: 'Apple', price: grown(14.5) } },
  });
  child.say({ type: 'reply', id: startId, reply: { ok: true, running: true, changed: true } });
  await expect(buy).resolves.toEqual({
    ok: true,
    running: true,
    stock: { name: 'Apple', price: grown(14.5) },
  });
  await expect(start).resolves.toEqual({ ok: true, running: true, changed: true });
  expect(supervisor.snapshot().running).toBe(true);
});

test('an op the child never answers is refused at the op timeout and the child replaced', async () => {
  const { supervisor, forks, events } = await opened({ opTimeoutMs: 300, restartDelayMs: 50 });
  const stuck = forks.latest();
  const stop = supervisor.stop();
  jest.advanceTimersByTime(299);
  let settled = false;
  void stop.then(() => (settled = true));
  await Promise.resolve();
  expect(settled).toBe(false);
  expect(supervisor.health().status).toBe('ok');
  jest.advanceTimersByTime(1);
  // The child is given up on only after this process has read what is waiting (setImmediate).
  expect(stuck.signals).toEqual([]);
  await jest.advanceTimersByTimeAsync(1);
  await expect(stop).resolves.toEqual({
    ok: false,
    error:
      'the ticker did not answer in time; it is being restarted and the operation was not applied',
  });
  // Killed, so a late answer can never apply the op after all; its replacement starts from
  // the state the stuck child was handed.
  expect(stuck.signals).toEqual(['SIGKILL']);
  expect(events).toEqual([['lost', 'it did not answer in time']]);
  expect(supervisor.health().status).toBe('down');
  await jest.advanceTimersByTimeAsync(50);
  expect(forks.calls).toHaveLength(2);
  expect(forks.latest().lastSent('init').state).toEqual(stuck.lastSent('init').state);
});

test('an idle child is pinged; one that stops answering is reported down, then replaced', async () => {
  const { supervisor, forks } = await opened({ heartbeatMs: 1_000, opTimeoutMs: 3_000 });
  const child = forks.latest();
  await jest.advanceTimersByTimeAsync(1_000);
  const ping = child.lastSent('ping');
  child.say({ type: 'pong', id: ping.id } satisfies ChildMessage);
  expect(supervisor.health().status).toBe('ok');
  await jest.advanceTimersByTimeAsync(1_000);
  expect(child.sent.filter((message) => message.type === 'ping')).toHaveLength(2);
  // Silent for longer than a heartbeat: /healthz says so before the child is given up on.
  await jest.advanceTimersByTimeAsync(1_001);
  expect(supervisor.health().status).toBe('down');
  expect(child.signals).toEqual([]);
  await jest.advanceTimersByTimeAsync(2_001);
  expect(child.signals).toEqual(['SIGKILL']);
});

test('updates are relayed in order and the snapshot follows them as a copy', async () => {
  const { supervisor, forks, events } = await opened();
  const update = {
    ...stateOf({ running: true, seq: 1, ts: Date.now() }),
    stocks: decayAll(stateOf().stocks),
  };
  forks.latest().say({ type: 'update', update } satisfies ChildMessage);
  expect(events).toEqual([['update', update]]);
  const snapshot = supervisor.snapshot();
  expect(snapshot).toEqual(update);
  snapshot.seq = 99;
  expect(supervisor.snapshot().seq).toBe(1);
});

test('malformed messages from the child are ignored', async () => {
  const { supervisor, forks, events } = await opened();
  const before = supervisor.snapshot();
  const child = forks.latest();
  child.say(null);
  child.say({ type: 'update', update: { ...before, seq: -1 } });
  child.say({ type: 'update', update: { ...before, stocks: [] } });
  child.say({ type: 'reply', id: 1, reply: { ok: true, running: true, changed: true, extra: 1 } });
  child.say({ type: 'rejected', error: 'bad message from parent: x' });
  expect(events).toEqual([]);
  expect(supervisor.snapshot()).toEqual(before);
});

test('a child that dies is replaced with the last state, with lost / back and backoff', async () => {
  const onRestart = jest.fn();
  const { supervisor, forks, events } = await opened({
    restartDelayMs: 100,
    maxRestartDelayMs: 350,
    onRestart,
  });
  const first = forks.latest();
  const started = supervisor.start();
  const startId = lastOpId(first);
  first.say({ type: 'reply', id: startId, reply: { ok: true, running: true, changed: true } });
  await expect(started).resolves.toEqual({ ok: true, running: true, changed: true });
  const update = { ...stateOf({ running: true, seq: 6, ts: Date.now() }) };
  first.say({ type: 'update', update } satisfies ChildMessage);
  const pending = supervisor.buy('Facebook');

  first.exit(null, 'SIGKILL');
  expect(events.slice(1)).toEqual([['lost', 'killed by SIGKILL']]);
  await expect(pending).resolves.toEqual({
    ok: false,
    error: 'the ticker restarted before answering; try again',
  });
  await expect(supervisor.stop()).resolves.toEqual({ ok: false, error: RESTARTING });
  expect(supervisor.pid).toBeUndefined();

  // Backoff: 100 ms, then 200, then capped at 350. onRestart counts each replacement when it
  // is forked (not when the old one dies), also one that dies before it is ready.
  for (const delay of [100, 200, 350]) {
    const forked = forks.calls.length;
    jest.advanceTimersByTime(delay - 1);
    expect(forks.calls).toHaveLength(forked);
    expect(onRestart).toHaveBeenCalledTimes(forked - 1);
    jest.advanceTimersByTime(1);
    expect(forks.calls).toHaveLength(forked + 1);
    expect(onRestart).toHaveBeenCalledTimes(forked);
    // The new child continues exactly where the last one was, running included.
    expect(forks.latest().sent).toEqual([
      { type: 'init', state: update, tickMs: 250, unannounced: false },
    ]);
    if (delay !== 350) forks.latest().exit(1, null);
  }
  // Only one lost for the whole outage.
  expect(events.filter(([name]) => name === 'lost')).toHaveLength(1);

  ready(forks.latest());
  expect(events.at(-1)).toEqual(['back']);
  expect(supervisor.pid).toBe(forks.latest().pid);
});

test('the backoff starts over after a child that lived long enough', async () => {
  const { forks } = await opened({ restartDelayMs: 100, healthyAfterMs: 1_000 });
  forks.latest().exit(1, null);
  jest.advanceTimersByTime(100);
  ready(forks.latest());
  jest.advanceTimersByTime(1_000);
  const count = forks.calls.length;
  forks.latest().exit(1, null);
  jest.advanceTimersByTime(100);
  expect(forks.calls).toHaveLength(count + 1);
});

test('a child that never becomes ready is killed and replaced', async () => {
  const { supervisor, forks } = setup({ readyTimeoutMs: 500, restartDelayMs: 100 });
  const opening = supervisor.open();
  const first = forks.latest();
  jest.advanceTimersByTime(500);
  expect(first.signals).toEqual(['SIGKILL']);
  jest.advanceTimersByTime(100);
  expect(forks.calls).toHaveLength(2);
  ready(forks.latest());
  await opening;
});

// A buy is acknowledged as soon as the child applies it, and its `update` follows 0-20 ms
// later. A child dying in between must not take the acknowledged buy with it.
test('a buy acknowledged just before the child dies survives the restart and is announced', async () => {
  const { supervisor, forks } = await opened({ restartDelayMs: 100 });
  const first = forks.latest();
  const buy = supervisor.buy('Apple');
  first.say({
    type: 'reply',
    id: lastOpId(first),
    reply: { ok: true, running: false, stock: { name: 'Apple', price: grown(14.5) } },
  });
  await expect(buy).resolves.toMatchObject({ ok: true });
  first.exit(null, 'SIGKILL'); // before its update went out
  jest.advanceTimersByTime(100);
  const init = forks.latest().lastSent('init');
  expect(init.state.stocks).toEqual(withBuy(stateOf().stocks, 'Apple'));
  expect(init.unannounced).toBe(true);
});

test('close disconnects the child, kills it if it does not exit in time, then refuses ops and does not restart', async () => {
  const { supervisor, forks } = await opened({ closeTimeoutMs: 2_000 });
  const child = forks.latest();
  child.exitOnDisconnect = false;
  const pending = supervisor.start();
  let closed = false;
  const closing = supervisor.close().then(() => (closed = true));
  await expect(pending).resolves.toEqual({ ok: false, error: 'the server is shutting down' });
  expect(child.connected).toBe(false);
  jest.advanceTimersByTime(1_999);
  await Promise.resolve();
  expect([closed, child.signals]).toEqual([false, []]);
  jest.advanceTimersByTime(1);
  expect(child.signals).toEqual(['SIGKILL']);
  await closing;
  jest.advanceTimersByTime(60_000);
  expect(forks.calls).toHaveLength(1);
  await expect(supervisor.buy('Apple')).resolves.toEqual({
    ok: false,
    error: 'the server is shutting down',
  });
  await expect(supervisor.open()).rejects.toThrow('closed');
  await expect(supervisor.close()).resolves.toBeUndefined();
});

test('close while opening rejects the open', async () => {
  const { supervisor } = setup();
  const opening = supervisor.open();
  await supervisor.close();
  await expect(opening).rejects.toThrow('the server is shutting down');
});

describe('with a state store', () => {
  /** A store that records every commit and fails while `failing` is set. */
  function fakeStore() {
    const commits: SavedState[] = [];
    const store = {
      failing: false,
      healthy: true,
      commits,
      commit(state: SavedState): Promise<void> {
        commits.push(structuredClone(state));
        store.healthy = !store.failing;
        return store.failing ? Promise.reject(new Error('disk full')) : Promise.resolve();
      },
      settled: () => Promise.resolve(),
    };
    return store;
  }

  /** The child applies the buy of Apple the parent just sent and says so. */
  function acknowledgeAppleBuy(child: FakeChild) {
    const stock = { name: 'Apple' as const, price: grown(stateOf().stocks[0]?.price ?? 0) };
    child.say({
      type: 'reply',
      id: lastOpId(child),
      reply: { ok: true, running: false, stock },
    } satisfies ChildMessage);
    return stock;
  }

  test('a buy is acknowledged only once committed, and its update broadcast only after its own commit', async () => {
    const store = fakeStore();
    const { supervisor, forks, events } = await opened({ store });
    const child = forks.latest();
    const buy = supervisor.buy('Apple');
    const stock = acknowledgeAppleBuy(child);
    expect(store.commits.at(-1)).toMatchObject({ seq: 0, unannounced: true });
    await expect(buy).resolves.toEqual({ ok: true, running: false, stock });
    // Not yet broadcast: the snapshot still shows seq 0 with the prices broadcast under it.
    expect(supervisor.snapshot()).toEqual(stateOf());
    const update = {
      ...stateOf({ seq: 1, ts: Date.now() }),
      stocks: withBuy(stateOf().stocks, 'Apple'),
    };
    child.say({ type: 'update', update } satisfies ChildMessage);
    expect(events).toEqual([]);
    await Promise.resolve();
    expect(store.commits.at(-1)).toEqual({ ...update, unannounced: false });
    expect(events).toEqual([['update', update]]);
  });

  test('a failed commit refuses the op, replaces the child from the committed state and writes it again', async () => {
    const store = fakeStore();
    const { supervisor, forks, events } = await opened({ store, restartDelayMs: 50 });
    const child = forks.latest();
    store.failing = true;
    const buy = supervisor.buy('Apple');
    acknowledgeAppleBuy(child);
    await expect(buy).resolves.toEqual({
      ok: false,
      error: 'the state could not be saved; the operation was not applied',
    });
    expect(child.signals).toEqual(['SIGKILL']);
    expect(events).toEqual([['lost', 'its state could not be saved']]);
    expect(supervisor.health().status).toBe('down');
    store.failing = false;
    const before = store.commits.length;
    await jest.advanceTimersByTimeAsync(50);
    // The refused state may have landed after all (a write past its deadline): overwritten.
    expect(store.commits.slice(before)).toEqual([{ ...stateOf(), unannounced: false }]);
    expect(forks.calls).toHaveLength(2);
    expect(forks.latest().lastSent('init')).toMatchObject({ state: stateOf(), unannounced: false });
    ready(forks.latest());
    expect(supervisor.health().status).toBe('ok');
  });
});
