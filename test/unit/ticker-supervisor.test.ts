/** The supervisor on a fake fork and Jest's fake clock; the real processes are
 * test/integration/supervision.test.ts's. */
import type { ChildMessage } from '../../protocol/ipc';
import { createLogger } from '../../server/logger';
import type { SavedState } from '../../server/state-file';
import { TickerSupervisor, type SupervisorOptions } from '../../server/ticker-supervisor';
import { fakeFork, type FakeChild } from '../helpers/fake-child';
import { grown, stateOf, withBuy } from '../helpers/prices';

const refused = (error: string) => ({ ok: false, error });
const RESTARTING = refused('the ticker is restarting; try again in a moment');
const DIED = refused('the ticker restarted before answering; try again');
const CLOSED = refused('the server is shutting down');
const STUCK = refused(
  'the ticker did not answer in time; it is being restarted and the operation was not applied',
);
const NOT_SAVED = refused('the state could not be saved; the operation was not applied');
const STARTED = { ok: true, running: true, changed: true } as const;
const APPLE_BOUGHT = { ok: true, running: false, stock: { name: 'Apple', price: grown(14.5) } };

beforeEach(() => jest.useFakeTimers({ now: 1_700_000_000_000 }));
afterEach(() => jest.useRealTimers());

/** A store that records every commit and fails while `failing` is set. */
function fakeStore() {
  const store = {
    failing: false,
    healthy: true,
    commits: [] as SavedState[],
    commit(state: SavedState): Promise<void> {
      store.commits.push(structuredClone(state));
      store.healthy = !store.failing;
      return store.failing ? Promise.reject(new Error('disk full')) : Promise.resolve();
    },
    settled: () => Promise.resolve(),
  };
  return store;
}

/** A supervisor on a fake fork, its events recorded; opened (its first child ready) unless not. */
async function setup({
  open = true,
  ...options
}: Partial<SupervisorOptions> & { open?: boolean } = {}) {
  const forks = fakeFork();
  const supervisor = new TickerSupervisor({
    childPath: '/x/dist/ticker/main.js',
    tickMs: 250,
    initialState: stateOf(),
    logger: createLogger('silent'),
    fork: forks.fork,
    ...options,
  });
  const events: unknown[][] = [];
  for (const name of ['update', 'lost', 'back'] as const)
    supervisor.on(name, (...args: unknown[]) => events.push([name, ...args]));
  if (open) {
    const opening = supervisor.open();
    ready(forks.latest());
    await opening;
  }
  return { supervisor, forks, events, child: forks.children[0]! };
}

/** Answers the init the child got with ready, as the real child does. */
function ready(child: FakeChild): void {
  child.say({ type: 'ready', state: child.lastSent('init').state } satisfies ChildMessage);
}

/** The child answers the last op it was sent. */
function reply(child: FakeChild, answer: unknown): void {
  const op = child.sent.at(-1);
  if (!op || !('id' in op)) throw new Error('no op sent');
  child.say({ type: 'reply', id: op.id, reply: answer });
}

/** Lets the commits (which resolve in microtasks) land. */
const flush = () => jest.advanceTimersByTimeAsync(0);

test('open forks the compiled child without inherited flags, hands it the state, and refuses ops until it is ready', async () => {
  const initialState = stateOf({ seq: 4 });
  const { supervisor, forks } = await setup({ initialState, open: false });
  expect(forks.children).toEqual([]);
  const opening = supervisor.open();
  const child = forks.latest();
  expect(child.modulePath).toBe('/x/dist/ticker/main.js');
  expect(child.options).toMatchObject({ execArgv: [], serialization: 'json' });
  expect(child.sent).toEqual([
    { type: 'init', state: initialState, tickMs: 250, unannounced: false },
  ]);
  expect(supervisor.pid).toBeUndefined();
  supervisor.delivered(1);
  await expect(supervisor.start()).resolves.toEqual(RESTARTING);
  ready(child);
  await opening;
  expect(supervisor.pid).toBe(child.pid);
  await supervisor.open();
  expect(forks.children).toHaveLength(1);
  // Flow control goes to a ready child only: a replacement starts with nothing in flight.
  supervisor.delivered(2);
  child.exit(1, null);
  supervisor.delivered(3);
  expect(child.sent.filter((message) => message.type === 'delivered')).toEqual([
    { type: 'delivered', seq: 2 },
  ]);
});

test('each op gets its own id and its own reply, in any order', async () => {
  const { supervisor, child } = await setup();
  const start = supervisor.start();
  const buy = supervisor.buy('Apple');
  const [startId, buyId] = child.sent.slice(1).map((op) => ('id' in op ? op.id : -1));
  expect(child.sent.slice(1)).toEqual([
    { type: 'start', id: startId },
    { type: 'buy', id: buyId, name: 'Apple' },
  ]);
  expect(buyId).not.toBe(startId);
  const bought = { ...APPLE_BOUGHT, running: true };
  child.say({ type: 'reply', id: buyId, reply: bought });
  child.say({ type: 'reply', id: startId, reply: STARTED });
  await expect(buy).resolves.toEqual(bought);
  await expect(start).resolves.toEqual(STARTED);
  expect(supervisor.snapshot().running).toBe(true);
});

// The watchdog runs every second: it pings an idle child, reports one down whose oldest
// request is over a second old, and replaces one that leaves a request 3 s unanswered.
test.each([true, false])(
  'a hung child (an op sent: %s) is reported down, then killed and replaced',
  async (withOp) => {
    const { supervisor, forks, events, child } = await setup();
    const stop = withOp ? supervisor.stop() : null;
    await jest.advanceTimersByTimeAsync(1_000);
    if (!withOp) expect(child.lastSent('ping')).toEqual({ type: 'ping', id: expect.any(Number) });
    expect(supervisor.health().status).toBe('ok');
    await jest.advanceTimersByTimeAsync(1_001);
    expect(supervisor.health().status).toBe('down');
    await jest.advanceTimersByTimeAsync(2_000);
    expect(child.signals).toEqual(['SIGKILL']);
    // Killed, so a late answer can never apply the op after all.
    if (stop) await expect(stop).resolves.toEqual(STUCK);
    expect(events).toEqual([['lost', 'it did not answer in time']]);
    await jest.advanceTimersByTimeAsync(100);
    expect(forks.latest().lastSent('init').state).toEqual(child.lastSent('init').state);
  },
);

test('a reply read in the same turn as the watchdog finds the op overdue still counts', async () => {
  const { supervisor, child } = await setup();
  const buy = supervisor.buy('Apple');
  // The watchdog sees the op 3 s old, and looks again after the poll phase has read replies.
  jest.advanceTimersByTime(3_000);
  reply(child, APPLE_BOUGHT);
  await jest.advanceTimersByTimeAsync(1);
  await expect(buy).resolves.toEqual(APPLE_BOUGHT);
  expect(child.signals).toEqual([]);
});

test('malformed messages from the child are ignored', async () => {
  const { supervisor, events, child } = await setup();
  const before = supervisor.snapshot();
  child.say(null);
  child.say({ type: 'update', update: { ...before, seq: -1 } });
  child.say({ type: 'update', update: { ...before, stocks: [] } });
  child.say({ type: 'reply', id: 1, reply: { ...STARTED, extra: 1 } });
  child.say({ type: 'rejected', error: 'bad message from parent: x' });
  await flush();
  expect(events).toEqual([]);
  expect(supervisor.snapshot()).toEqual(before);
});

test('a dead child is replaced from the last state with lost / back and a backoff that starts over after 10 s of life', async () => {
  const onRestart = jest.fn();
  const { supervisor, forks, events, child } = await setup({ onRestart });
  const update = stateOf({ running: true, seq: 6 });
  child.say({ type: 'update', update } satisfies ChildMessage);
  await flush();
  const pending = supervisor.buy('Facebook');

  child.exit(null, 'SIGKILL');
  expect(events.slice(1)).toEqual([['lost', 'killed by SIGKILL']]);
  await expect(pending).resolves.toEqual(DIED);
  await expect(supervisor.stop()).resolves.toEqual(RESTARTING);
  expect(supervisor.pid).toBeUndefined();

  // Each replacement dies, at once or right after ready (which does not reset the backoff):
  // the delay doubles up to 5 s. onRestart counts each replacement when it is forked.
  for (const [i, delay] of [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000].entries()) {
    const forked = forks.children.length;
    jest.advanceTimersByTime(delay - 1);
    expect(forks.children).toHaveLength(forked);
    jest.advanceTimersByTime(1);
    expect(onRestart).toHaveBeenCalledTimes(forked);
    // The new child continues exactly where the last one was, running included.
    expect(forks.latest().sent).toEqual([
      { type: 'init', state: update, tickMs: 250, unannounced: false },
    ]);
    if (i % 2 === 1) ready(forks.latest());
    if (i < 7) forks.latest().exit(1, null);
  }
  // One lost per outage, one back per child that became ready.
  const names = ['lost', 'back', 'lost', 'back', 'lost', 'back', 'lost', 'back'];
  expect(events.slice(1).map(([name]) => name)).toEqual(names);
  expect(supervisor.pid).toBe(forks.latest().pid);
  // A child that lived 10 s (answering its pings) starts the delays over.
  const healthy = forks.latest();
  for (let s = 0; s < 10; s++) {
    jest.advanceTimersByTime(1_000);
    healthy.say({ type: 'pong', id: healthy.lastSent('ping').id } satisfies ChildMessage);
  }
  healthy.exit(1, null);
  jest.advanceTimersByTime(99);
  expect(forks.children).toHaveLength(9);
  jest.advanceTimersByTime(1);
  expect(forks.children).toHaveLength(10);
});

test('open() waits through children that crash at boot or never become ready', async () => {
  const { supervisor, forks } = await setup({ open: false });
  let opened = false;
  const opening = supervisor.open().then(() => (opened = true));
  forks.latest().exit(3, null);
  jest.advanceTimersByTime(100);
  const silent = forks.latest();
  jest.advanceTimersByTime(10_000);
  expect(silent.signals).toEqual(['SIGKILL']);
  jest.advanceTimersByTime(200);
  expect(forks.children).toHaveLength(3);
  await flush();
  expect(opened).toBe(false);
  ready(forks.latest());
  await opening;
});

// A buy is acknowledged as soon as the child applies it, and its `update` follows 0-20 ms
// later. A child dying in between must not take the acknowledged buy with it.
test('a buy acknowledged just before the child dies survives the restart and is announced', async () => {
  const { supervisor, forks, child } = await setup();
  const buy = supervisor.buy('Apple');
  reply(child, APPLE_BOUGHT);
  await expect(buy).resolves.toEqual(APPLE_BOUGHT);
  child.exit(null, 'SIGKILL'); // before its update went out
  jest.advanceTimersByTime(100);
  expect(forks.latest().lastSent('init')).toMatchObject({
    state: { stocks: withBuy(stateOf().stocks, 'Apple') },
    unannounced: true,
  });
});

test('close disconnects the child, kills it if it does not exit in 2 s, then refuses ops and does not restart', async () => {
  const { supervisor, forks, child } = await setup();
  child.exitOnDisconnect = false;
  const pending = supervisor.start();
  const closing = supervisor.close();
  await expect(pending).resolves.toEqual(CLOSED);
  expect(child.connected).toBe(false);
  jest.advanceTimersByTime(1_999);
  expect(child.signals).toEqual([]);
  jest.advanceTimersByTime(1);
  expect(child.signals).toEqual(['SIGKILL']);
  await closing;
  jest.advanceTimersByTime(60_000);
  expect(forks.children).toHaveLength(1);
  await expect(supervisor.buy('Apple')).resolves.toEqual(CLOSED);
  await expect(supervisor.open()).rejects.toThrow('closed');
  await expect(supervisor.close()).resolves.toBeUndefined();
});

test('close while opening rejects the open', async () => {
  const { supervisor } = await setup({ open: false });
  const opening = supervisor.open();
  await supervisor.close();
  await expect(opening).rejects.toThrow('the server is shutting down');
});

describe('with a state store', () => {
  test('a buy is acknowledged only once committed, and its update broadcast only after its own commit; the snapshot follows as a copy', async () => {
    const store = fakeStore();
    const { supervisor, events, child } = await setup({ store });
    const buy = supervisor.buy('Apple');
    reply(child, APPLE_BOUGHT);
    expect(store.commits.at(-1)).toMatchObject({ seq: 0, unannounced: true });
    await expect(buy).resolves.toEqual(APPLE_BOUGHT);
    // Not yet broadcast: the snapshot still shows seq 0 with the prices broadcast under it.
    expect(supervisor.snapshot()).toEqual(stateOf());
    const update = { ...stateOf({ seq: 1 }), stocks: withBuy(stateOf().stocks, 'Apple') };
    child.say({ type: 'update', update } satisfies ChildMessage);
    expect([store.commits.at(-1), events]).toEqual([{ ...update, unannounced: false }, []]);
    await flush();
    expect(events).toEqual([['update', update]]);
    const snapshot = supervisor.snapshot();
    expect(snapshot).toEqual(update);
    snapshot.seq = 99;
    expect(supervisor.snapshot().seq).toBe(1);
  });

  test('a failed commit refuses the op, replaces the child from the committed state and writes it again', async () => {
    const store = fakeStore();
    const { supervisor, forks, events, child } = await setup({ store });
    store.failing = true;
    const buy = supervisor.buy('Apple');
    reply(child, APPLE_BOUGHT);
    await expect(buy).resolves.toEqual(NOT_SAVED);
    expect(child.signals).toEqual(['SIGKILL']);
    expect(events).toEqual([['lost', 'its state could not be saved']]);
    expect(supervisor.health().status).toBe('down');
    store.failing = false;
    const before = store.commits.length;
    await jest.advanceTimersByTimeAsync(100);
    // The refused state may have landed after all (a write past its deadline): overwritten.
    expect(store.commits.slice(before)).toEqual([{ ...stateOf(), unannounced: false }]);
    expect(forks.latest().lastSent('init')).toMatchObject({ state: stateOf(), unannounced: false });
    ready(forks.latest());
    expect(supervisor.health().status).toBe('ok');
  });

  test('health is degraded and close() fails while the store cannot write', async () => {
    const store = fakeStore();
    const { supervisor } = await setup({ store });
    store.healthy = false;
    expect(supervisor.health()).toEqual({
      status: 'degraded',
      details: { state: 'the state file cannot be written' },
    });
    await expect(supervisor.close()).rejects.toThrow('the last state could not be saved');
  });
});
