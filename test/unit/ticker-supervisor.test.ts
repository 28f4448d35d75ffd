/** The supervisor on a fake fork and Jest's fake clock; real processes: supervision.test.ts. */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

import { pino } from 'pino';

import type { UpdatePayload } from '../../protocol/events';
import type { ChildMessage, ParentMessage } from '../../protocol/ipc';
import { LAST_SEQ } from '../../protocol/stocks';
import { PATHS } from '../../server/paths';
import type { SavedState } from '../../protocol/validation';
import { TickerSupervisor, type SupervisorOptions } from '../../server/ticker-supervisor';
import { grown, stateOf, T0, withBuy } from '../helpers/prices';

const [RESTARTING, DIED, CLOSED, STUCK, NOT_SAVED] = [
  'the ticker is restarting; try again in a moment',
  'the ticker restarted before answering; try again',
  'the server is shutting down',
  'the ticker did not answer in time and is restarting; the op was not applied',
  'the state could not be saved; the operation was not applied',
].map((error) => ({ ok: false, error }));
const STARTED = { ok: true, running: true, changed: true } as const;
const APPLE_BOUGHT = { ok: true, running: false, stock: { name: 'Apple', price: grown(14.5) } };
/** Never started: "change since open" counts from its initial prices. */
const OPENING = { stocks: stateOf().stocks, seq: stateOf().seq, ts: stateOf().ts };
const init = (state: UpdatePayload) => ({ type: 'init', state, tickMs: 250, unannounced: false });

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

let nextPid = 50_000;

/** A fake forked child: it records what the parent sends; the test speaks and exits for it. */
class FakeChild extends EventEmitter {
  readonly pid = nextPid++;
  readonly sent: ParentMessage[] = [];
  readonly signals: NodeJS.Signals[] = [];
  connected = true;
  send(message: ParentMessage, callback?: (error: null) => void): void {
    this.sent.push(structuredClone(message));
    callback?.(null);
  }
  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    this.exit(null, signal);
  }
  exit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.connected) this.emit('exit', code, signal);
    this.connected = false;
  }
  /** A real child exits when its channel closes. */
  disconnect = () => this.exit(0, null);
  say = (message: unknown) => this.emit('message', structuredClone(message));
  /** Answers its init with ready, as the real child does. */
  ready = () =>
    this.say({ type: 'ready', state: this.lastSent('init').state } satisfies ChildMessage);
  reply = (reply: unknown) =>
    this.say({ type: 'reply', id: (this.sent.at(-1) as { id: number }).id, reply });
  lastSent = <T extends ParentMessage['type']>(type: T) =>
    this.sent.findLast((sent) => sent.type === type) as Extract<ParentMessage, { type: T }>;
}

type Setup = Partial<SupervisorOptions> & { open?: boolean; stored?: boolean | 'slow' };

/** A supervisor on a fake fork (and store, slow or not, if `stored`), its events recorded. */
async function setup({ open = true, stored = false, ...options }: Setup = {}) {
  const forks: FakeChild[] = [];
  const latest = () => forks.at(-1)!;
  const fork = jest.fn(() => {
    forks.push(new FakeChild());
    return latest() as unknown as ChildProcess;
  });
  /** Records every commit. As the test sets them: commits fail (`failing`), or each waits for its
   * own resolver in `held` (`hold`); `writing` is a write under way (one past its deadline). */
  const store = {
    ...{ failing: false, healthy: true, slow: stored === 'slow', hold: false },
    held: [] as (() => void)[],
    commits: [] as SavedState[],
    commit(state: SavedState): Promise<void> {
      store.commits.push(structuredClone(state));
      if (store.hold) return new Promise<void>((resolve) => store.held.push(resolve));
      return store.failing ? Promise.reject(new Error('disk full')) : Promise.resolve();
    },
    writing: Promise.resolve(),
    settled: () => store.writing,
  };
  const base = { tickMs: 250, initialState: stateOf(), logger: pino({ level: 'silent' }), fork };
  const supervisor = new TickerSupervisor({ ...base, ...(stored && { store }), ...options });
  const events: unknown[][] = [];
  for (const name of ['update', 'lost', 'back', 'opening'] as const)
    supervisor.on(name, (...args: unknown[]) => events.push([name, ...args]));
  const opening = open && supervisor.open();
  if (open) latest().ready();
  await opening;
  return { supervisor, fork, forks, latest, events, store, child: forks[0]! };
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Lets the commits (which resolve in microtasks) land. */
const flush = () => jest.advanceTimersByTimeAsync(0);

test('open forks the compiled child without inherited flags, hands it the state, refuses ops until it is ready, and waits through children that crash at boot or never become ready', async () => {
  const initialState = stateOf({ seq: 4 });
  const { supervisor, fork, latest, forks } = await setup({ initialState, open: false });
  expect(forks).toEqual([]);
  let opened = false;
  const opening = supervisor.open().then(() => (opened = true));
  const noFlags = expect.objectContaining({ execArgv: [] });
  expect(fork).toHaveBeenCalledWith(PATHS.tickerChild, [], noFlags);
  latest().exit(3, null);
  jest.advanceTimersByTime(100);
  const silent = latest();
  jest.advanceTimersByTime(10_000);
  expect(silent.signals).toEqual(['SIGKILL']);
  jest.advanceTimersByTime(200);
  const child = latest();
  supervisor.delivered(1);
  await expect(supervisor.start()).resolves.toEqual(RESTARTING);
  expect(supervisor.pid).toBeUndefined();
  expect(forks.map((forked) => forked.sent)).toEqual(Array(3).fill([init(initialState)]));
  await flush();
  expect(opened).toBe(false);
  child.ready();
  await opening;
  expect(supervisor.pid).toBe(child.pid);
  await supervisor.open();
  expect(forks).toHaveLength(3);
  // Flow control goes to a ready child only: a replacement starts with nothing in flight.
  supervisor.delivered(2);
  child.exit(1, null);
  supervisor.delivered(3);
  expect(child.sent.slice(1)).toEqual([{ type: 'delivered', seq: 2 }]);
});

// What Node hands back when the fork itself fails (EMFILE): no pid, no channel, 'error' but no 'exit'.
test('a fork that fails is replaced after the usual backoff, not after the 10 s ready timeout, and never signalled', async () => {
  const { supervisor, fork, latest, events } = await setup({ open: false });
  const failed = Object.assign(new EventEmitter(), { connected: false, kill: jest.fn() });
  fork.mockImplementationOnce(() => failed as unknown as ChildProcess);
  const opening = supervisor.open();
  failed.emit('error', new Error('spawn EMFILE'));
  expect(events).toEqual([['lost', 'error: spawn EMFILE']]);
  // Without a pid, Node 20's kill() signals pid 0: the server's whole process group.
  expect(failed.kill).not.toHaveBeenCalled();
  jest.advanceTimersByTime(100);
  latest().ready();
  await opening;
  expect(fork).toHaveBeenCalledTimes(2);
});

test('each op gets its own id and its own reply, in any order; malformed messages from the child are ignored', async () => {
  const { supervisor, events, child } = await setup();
  const before = supervisor.snapshot();
  child.say(null);
  child.say({ type: 'update', update: { ...before, seq: -1 } });
  child.say({ type: 'rejected', error: 'bad message from parent: x' });
  const start = supervisor.start();
  const buy = supervisor.buy('Apple');
  const [startId, buyId] = child.sent.slice(1).map((op) => ('id' in op ? op.id : -1));
  expect(child.sent.slice(1)).toEqual([
    { type: 'start', id: startId },
    { type: 'buy', id: buyId, name: 'Apple' },
  ]);
  expect(buyId).not.toBe(startId);
  const bought = { ...APPLE_BOUGHT, running: true };
  child.say({ type: 'reply', id: buyId, reply: { ...bought, extra: 1 } });
  child.say({ type: 'reply', id: buyId, reply: bought });
  child.say({ type: 'reply', id: startId, reply: STARTED });
  await expect(buy).resolves.toEqual(bought);
  await expect(start).resolves.toEqual(STARTED);
  // No update from the malformed ones; the start's opening holds the buy acked before it.
  const opening = { stocks: withBuy(before.stocks, 'Apple'), seq: before.seq, ts: Date.now() };
  expect(events).toEqual([['opening', opening]]);
  expect(supervisor.snapshot()).toEqual({ ...before, running: true });
});

// Every second the watchdog pings an idle child; a request 1 s old is down, 3 s old is killed.
const HUNG =
  'a hung child (an op sent: %s) is reported down, then killed and lost as a dead one is';
test.each([true, false])(HUNG, async (withOp) => {
  const { supervisor, events, child } = await setup();
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
});

// A buy is acknowledged before its `update` (0-20 ms later): a child dying between keeps it.
test('a reply read in the same turn as the watchdog finds the op overdue still counts; the buy it acknowledges survives a restart before its update and is announced', async () => {
  const { supervisor, latest, child } = await setup();
  const buy = supervisor.buy('Apple');
  // The watchdog sees the op 3 s old, and looks again after the poll phase has read replies.
  jest.advanceTimersByTime(3_000);
  child.reply(APPLE_BOUGHT);
  await jest.advanceTimersByTimeAsync(1);
  await expect(buy).resolves.toEqual(APPLE_BOUGHT);
  expect(child.signals).toEqual([]);
  child.exit(null, 'SIGKILL'); // before its update went out
  jest.advanceTimersByTime(100);
  const stocks = withBuy(stateOf().stocks, 'Apple');
  expect(latest().lastSent('init')).toMatchObject({ state: { stocks }, unannounced: true });
});

test('a dead child is replaced from the last state with lost / back and a backoff that starts over after 10 s of life', async () => {
  const onRestart = jest.fn();
  const { supervisor, latest, forks, events, child } = await setup({ onRestart });
  const update = stateOf({ running: true, seq: 6 });
  child.say({ type: 'update', update } satisfies ChildMessage);
  await flush();
  const pending = supervisor.buy('Facebook');
  child.exit(null, 'SIGKILL');
  expect(events.slice(1)).toEqual([['lost', 'killed by SIGKILL']]);
  await expect(pending).resolves.toEqual(DIED);
  // Each replacement dies, at once or right after ready (no reset): the delay doubles to 5 s.
  for (const [i, delay] of [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000].entries()) {
    const forked = forks.length;
    jest.advanceTimersByTime(delay - 1);
    expect(forks).toHaveLength(forked);
    jest.advanceTimersByTime(1);
    expect(onRestart).toHaveBeenCalledTimes(forked);
    // The new child continues exactly where the last one was, running included.
    expect(latest().sent).toEqual([init(update)]);
    if (i % 2 === 1) latest().ready();
    if (i < 7) latest().exit(1, null);
  }
  // One lost per outage, one back per child that became ready.
  expect(events.slice(1).map(([name]) => name)).toEqual(Array(4).fill(['lost', 'back']).flat());
  // A child that lived 10 s (answering its pings) starts the delays over.
  const healthy = latest();
  for (let s = 0; s < 10; s++) {
    jest.advanceTimersByTime(1_000);
    healthy.say({ type: 'pong', id: healthy.lastSent('ping').id } satisfies ChildMessage);
  }
  healthy.exit(1, null);
  jest.advanceTimersByTime(99);
  expect(forks).toHaveLength(9);
  jest.advanceTimersByTime(1);
  expect(forks).toHaveLength(10);
});

test('close disconnects the child, kills it if it does not exit in 2 s, then refuses ops and does not restart, nor fork while a restart saves; close while opening rejects the open', async () => {
  const unopened = await setup({ open: false });
  const opening = unopened.supervisor.open();
  await unopened.supervisor.close();
  await expect(opening).rejects.toThrow('the server is shutting down');
  // It exited as told: no kill 2 s later.
  jest.advanceTimersByTime(2_000);
  expect(unopened.latest().signals).toEqual([]);
  const restarting = await setup({ stored: true });
  restarting.store.hold = true;
  restarting.child.exit(1, null);
  await jest.advanceTimersByTimeAsync(100);
  const closedWhileSaving = restarting.supervisor.close();
  for (const release of restarting.store.held) release();
  await closedWhileSaving;
  await jest.advanceTimersByTimeAsync(60_000);
  expect(restarting.forks).toHaveLength(1);
  const { supervisor, forks, child } = await setup();
  const disconnect = jest.spyOn(child, 'disconnect').mockReturnValue();
  const pending = supervisor.start();
  const closing = supervisor.close();
  await expect(pending).resolves.toEqual(CLOSED);
  expect(disconnect).toHaveBeenCalled();
  jest.advanceTimersByTime(1_999);
  expect(child.signals).toEqual([]);
  jest.advanceTimersByTime(1);
  expect(child.signals).toEqual(['SIGKILL']);
  await closing;
  jest.advanceTimersByTime(60_000);
  expect(forks).toHaveLength(1);
  await expect(supervisor.buy('Apple')).resolves.toEqual(CLOSED);
  await expect(supervisor.open()).rejects.toThrow('closed');
  await expect(supervisor.close()).resolves.toBeUndefined();
});

test('with a store, a buy is acknowledged only once committed, and its update broadcast only after its own commit, into the saved history; the snapshot follows as a copy; a real start saves and then tells its opening prices', async () => {
  const { supervisor, events, child, store } = await setup({ stored: true });
  const buy = supervisor.buy('Apple');
  child.reply(APPLE_BOUGHT);
  expect(store.commits.at(-1)).toMatchObject({ seq: 0, unannounced: true });
  await expect(buy).resolves.toEqual(APPLE_BOUGHT);
  // Not yet broadcast: the snapshot still shows seq 0 with the prices broadcast under it.
  expect(supervisor.snapshot()).toEqual(stateOf());
  const update = { ...stateOf({ seq: 1 }), stocks: withBuy(stateOf().stocks, 'Apple') };
  child.say({ type: 'update', update } satisfies ChildMessage);
  const saved = { ...update, unannounced: false, opening: OPENING, history: [update] };
  expect([store.commits.at(-1), events]).toEqual([saved, []]);
  await flush();
  expect(events).toEqual([['update', update]]);
  const snapshot = supervisor.snapshot();
  expect(snapshot).toEqual(update);
  snapshot.seq = 99;
  expect(supervisor.snapshot().seq).toBe(1);
  const start = supervisor.start();
  child.reply(STARTED);
  const opening = { stocks: update.stocks, seq: 1, ts: Date.now() };
  expect([store.commits.at(-1), events.length]).toEqual([{ ...saved, running: true, opening }, 1]);
  await expect(start).resolves.toMatchObject({ ok: true, changed: true });
  expect(events.at(-1)).toEqual(['opening', opening]);
  expect(supervisor.greeting()).toEqual({ history: [update], opening });
  // A start while running is no start: the opening stays.
  const again = supervisor.start();
  child.reply({ ok: true, running: true, changed: false });
  await again;
  expect([events.length, supervisor.greeting().opening]).toEqual([2, opening]);
});

test('with a store, a failed commit refuses the op, replaces the child from the committed state and writes it again; health is degraded and close() fails while the store cannot write', async () => {
  const { supervisor, latest, events, child, store } = await setup({ stored: true });
  store.failing = true;
  const buy = supervisor.buy('Apple');
  child.reply(APPLE_BOUGHT);
  await expect(buy).resolves.toEqual(NOT_SAVED);
  expect(child.signals).toEqual(['SIGKILL']);
  expect(events).toEqual([['lost', 'its state could not be saved']]);
  expect(supervisor.health().status).toBe('down');
  store.failing = false;
  const before = store.commits.length;
  // Nothing is written until the late write ends: its failure would void what queued behind it.
  let ended!: () => void;
  store.writing = new Promise((resolve) => (ended = resolve));
  await jest.advanceTimersByTimeAsync(100);
  expect(store.commits.length).toBe(before);
  ended();
  await flush();
  // The refused state may have landed after all (a write past its deadline): overwritten.
  const rewritten = { ...stateOf(), unannounced: false, opening: OPENING };
  expect(store.commits.slice(before)).toEqual([rewritten]);
  expect(latest().lastSent('init')).toMatchObject({ state: stateOf(), unannounced: false });
  latest().ready();
  expect(supervisor.health().status).toBe('ok');
  // A start whose save fails is refused, and its prices do not become the opening.
  store.failing = true;
  const start = supervisor.start();
  latest().reply(STARTED);
  await expect(start).resolves.toEqual(NOT_SAVED);
  store.failing = false;
  await jest.advanceTimersByTimeAsync(200);
  latest().ready();
  expect(supervisor.greeting().opening).toEqual(OPENING);
  expect(store.commits.at(-1)!.opening).toEqual(OPENING);
  store.healthy = false;
  const degraded = { status: 'degraded', details: { state: 'the state file cannot be written' } };
  expect(supervisor.health()).toEqual(degraded);
  // close() too waits for the write under way before it judges the store.
  store.writing = new Promise((resolve) => (ended = resolve));
  const closing = supervisor.close();
  let closed = false;
  closing.catch(() => (closed = true));
  await flush();
  expect(closed).toBe(false);
  ended();
  await expect(closing).rejects.toThrow('the last state could not be saved');
});

// Else the restart's write, on a disk that hangs again, would hold exit() for good.
test('closed while a restart waits for a write under way, the restart then neither writes nor forks', async () => {
  const { supervisor, fork, child, store } = await setup({ stored: true });
  let ended!: () => void;
  store.writing = new Promise((resolve) => (ended = resolve));
  child.exit(1, null);
  await jest.advanceTimersByTimeAsync(100);
  const commits = store.commits.length;
  const closing = supervisor.close();
  ended();
  await closing;
  expect([store.commits.length, fork.mock.calls.length]).toEqual([commits, 1]);
});

test('with a slow store, a save reserves ten seqs: updates up to them go out while it is saved, in order, unless a save is under way; ticks are saved again once a second has passed or the seqs run out; a replaced child starts from the last update sent, a failed save ahead of it included; close saves the true seq, acked buys included', async () => {
  const { supervisor, latest, child, store } = await setup({ stored: 'slow' });
  /** Prices that differ at every seq; from the buy on (13), Apple's is bought. */
  const prices = (seq: number) =>
    withBuy(withBuy(stateOf().stocks, 'Microsoft', seq), 'Apple', seq >= 13 ? 1 : 0);
  const tick = (seq: number) =>
    latest().say({ type: 'update', update: stateOf({ seq, stocks: prices(seq) }) });
  const sent: number[] = [];
  supervisor.on('update', ({ seq }) => sent.push(seq));
  const savedSeqs = () => store.commits.map(({ seq }) => seq);
  // Nothing reserved yet: the first update waits for the save that reserves the next ten seqs.
  tick(1);
  expect([savedSeqs(), sent]).toEqual([[11], []]);
  await flush();
  for (let seq = 2; seq <= 10; seq++) tick(seq);
  // Unsaved, yet sent: new clients get them in their history.
  expect(supervisor.greeting().history.map(({ seq }) => seq)).toEqual(range(1, 10));
  // The reserved seqs used up, and a second later: saved again, each sent at once.
  tick(11);
  await jest.advanceTimersByTimeAsync(1_000);
  tick(12);
  await flush();
  expect([savedSeqs(), sent]).toEqual([[11, 21, 22], range(1, 12)]);
  // While a buy is saved, the update that may carry it waits: were it refused, none would see it.
  store.hold = true;
  const buy = supervisor.buy('Apple');
  child.reply(APPLE_BOUGHT);
  tick(13);
  store.held[0]!();
  await expect(buy).resolves.toEqual(APPLE_BOUGHT);
  // 13 still waits for its own save, and 14 does not overtake it.
  tick(14);
  expect(sent).toEqual(range(1, 12));
  store.hold = false;
  for (const resolve of store.held) resolve();
  await flush();
  expect(sent).toEqual(range(1, 14));
  // Sent ahead, then its save fails: the next child goes on from it, saved first.
  store.failing = true;
  await jest.advanceTimersByTimeAsync(1_000);
  tick(15);
  await flush();
  store.failing = false;
  await jest.advanceTimersByTimeAsync(100);
  const from = (seq: number) => ({ state: { seq, stocks: prices(seq) }, unannounced: false });
  expect(store.commits.at(-1)).toMatchObject({ seq: 25, stocks: prices(15), unannounced: true });
  expect(latest().lastSent('init')).toMatchObject(from(15));
  latest().ready();
  // A tick sent unsaved, then the child dies: its replacement goes on from that tick.
  tick(16);
  latest().exit(1, null);
  await jest.advanceTimersByTimeAsync(200);
  expect(latest().lastSent('init')).toMatchObject(from(16));
  latest().ready();
  tick(17);
  expect(sent).toEqual(range(1, 17));
  // A buy whose save lands while close() waits for the writes is acked, and kept by the last one,
  // though the write ends a few turns before the supervisor hears its outcome.
  store.hold = true;
  let ended!: () => void;
  store.writing = new Promise((resolve) => (ended = resolve));
  const last = supervisor.buy('Apple');
  latest().reply({ ...APPLE_BOUGHT, stock: { name: 'Apple', price: grown(grown(14.5)) } });
  const closed = supervisor.close();
  store.hold = false;
  ended();
  await flush();
  store.held.at(-1)!();
  await closed;
  await expect(last).resolves.toMatchObject({ ok: true });
  const stocks = withBuy(withBuy(stateOf().stocks, 'Microsoft', 17), 'Apple', 2);
  expect(store.commits.at(-1)).toMatchObject({ seq: 17, stocks, unannounced: true });
});

test('with a slow store, close saves the last update sent under its own seq, though a tick was not saved', async () => {
  const { supervisor, latest, store } = await setup({ stored: 'slow' });
  const update = (seq: number) => stateOf({ seq, stocks: withBuy(stateOf().stocks, 'Apple', seq) });
  latest().say({ type: 'update', update: update(1) });
  await flush();
  latest().say({ type: 'update', update: update(2) });
  expect(store.commits.map(({ seq }) => seq)).toEqual([11]);
  await supervisor.close();
  const saved = { ...update(2), history: [update(1), update(2)], opening: OPENING };
  expect(store.commits.at(-1)).toEqual({ ...saved, unannounced: false });
});

test('with a slow store, a save near the end reserves up to the last seq but one, which a restart numbers its state after', async () => {
  const { latest, store } = await setup({
    stored: 'slow',
    initialState: stateOf({ seq: LAST_SEQ - 5 }),
  });
  latest().say({ type: 'update', update: stateOf({ seq: LAST_SEQ - 4 }) });
  expect(store.commits.map(({ seq }) => seq)).toEqual([LAST_SEQ - 1]);
});
