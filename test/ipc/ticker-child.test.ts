/**
 * The real compiled ticker child, forked as the server forks it, driven over real IPC.
 */
import type { UpdatePayload } from '../../protocol/events';
import type { OpReply } from '../../protocol/ipc';
import { ForkedTicker } from '../helpers/forked-ticker';
import { decayAll, grown, priceOf, SEED, stateOf, withBuy } from '../helpers/prices';

const FAST_TICK_MS = 50;

let ticker: ForkedTicker;

beforeEach(() => {
  ticker = ForkedTicker.fork();
});

afterEach(async () => {
  await ForkedTicker.killAll();
  expect(ticker.malformed).toEqual([]);
});

function lastUpdateBefore(index: number): UpdatePayload {
  const items = ticker.messages.items.slice(0, index);
  for (let i = items.length - 1; i >= 0; i--) {
    const message = items[i]?.message;
    if (message?.type === 'update') return message.update;
  }
  throw new Error(`no update before message #${index}`);
}

function expectRunReply(reply: OpReply, running: boolean, changed: boolean): void {
  expect(reply).toEqual({ ok: true, running, changed });
}

/** Each update is one tick of the previous: exact decay, seq + 1. */
function expectTicks(previous: UpdatePayload, updates: readonly UpdatePayload[]): void {
  let last = previous;
  for (const update of updates) {
    expect(update.stocks).toEqual(decayAll(last.stocks));
    expect(update.seq).toBe(last.seq + 1);
    expect(update.running).toBe(true);
    expect(update.ts).toBeGreaterThanOrEqual(last.ts);
    last = update;
  }
}

test('init is answered with ready and the state handed over; nothing ticks while stopped', async () => {
  const state = stateOf({ seq: 5, ts: Date.now() - 1000 });
  await expect(ticker.init(state, FAST_TICK_MS)).resolves.toEqual(state);
  // Prove the child is idle: an op round trip later, still no update.
  const { reply } = await ticker.op({ type: 'stop' });
  expectRunReply(reply, false, false);
  expect(ticker.updatesSince(0)).toEqual([]);
});

test('ops before init are answered ok:false', async () => {
  const { reply } = await ticker.op({ type: 'start' });
  expect(reply).toEqual({ ok: false, error: 'ticker is not initialised yet' });
});

test('start replies changed:true, then ticks with exact decay; a second start is a no-op', async () => {
  const state = stateOf({ seq: 3, ts: Date.now() });
  await ticker.init(state, FAST_TICK_MS);
  const started = await ticker.op({ type: 'start' });
  expectRunReply(started.reply, true, true);
  const again = await ticker.op({ type: 'start' });
  expectRunReply(again.reply, true, false);

  const updates = await ticker.waitForUpdates(4, started.index, 3_000);
  expectTicks(
    state,
    updates.map((item) => item.update),
  );
  expect(updates.map((item) => item.update.seq)).toEqual([4, 5, 6, 7]);
});

test('ticks arrive about once a second with tickMs 1000', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), 1000);
  const started = await ticker.op({ type: 'start' });
  const updates = await ticker.waitForUpdates(4, started.index, 5_000);
  const [first] = updates;
  // The first tick comes at once, not a second later.
  expect((first?.at ?? Infinity) - started.at).toBeLessThan(300);
  for (let i = 1; i < updates.length; i++) {
    const previous = updates[i - 1];
    const current = updates[i];
    if (!previous || !current) throw new Error('missing update');
    const arrivalGap = current.at - previous.at;
    const tsGap = current.update.ts - previous.update.ts;
    expect(arrivalGap).toBeGreaterThanOrEqual(800);
    expect(arrivalGap).toBeLessThanOrEqual(1300);
    expect(tsGap).toBeGreaterThanOrEqual(800);
    expect(tsGap).toBeLessThanOrEqual(1300);
  }
  expectTicks(
    stateOf(),
    updates.map((item) => item.update),
  );
}, 10_000);

test('buy while stopped replies with the exact price and an update follows promptly', async () => {
  await ticker.init(stateOf({ seq: 9, ts: Date.now() }), FAST_TICK_MS);
  const bought = await ticker.op({ type: 'buy', name: 'Apple' });
  expect(bought.reply).toEqual({
    ok: true,
    running: false,
    stock: { name: 'Apple', price: 14.5 + 14.5 / 10 },
  });
  const [update] = await ticker.waitForUpdates(1, bought.index, 1_000);
  expect(update?.update).toEqual({
    stocks: withBuy(SEED, 'Apple'),
    running: false,
    seq: 10,
    ts: expect.any(Number),
  });
  expect((update?.at ?? Infinity) - bought.at).toBeLessThan(100);
});

test('buy while running: the next update carries exactly the bought price', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  const started = await ticker.op({ type: 'start' });
  await ticker.waitForUpdates(2, started.index, 2_000);

  const bought = await ticker.op({ type: 'buy', name: 'Microsoft' });
  // The state the buy applied to: the last update the child sent before its reply.
  const before = lastUpdateBefore(bought.index);
  const expectedPrice = grown(priceOf(before.stocks, 'Microsoft'));
  expect(bought.reply).toEqual({
    ok: true,
    running: true,
    stock: { name: 'Microsoft', price: expectedPrice },
  });

  // The buy is its own update, even if a tick comes first (the tick flushes it first).
  const [next] = await ticker.waitForUpdates(1, bought.index, 1_000);
  expect(next?.update.seq).toBe(before.seq + 1);
  expect(next?.update.stocks).toEqual(withBuy(before.stocks, 'Microsoft'));
  expect((next?.at ?? Infinity) - bought.at).toBeLessThan(100);
});

test('flow control: while an update is not reported delivered, ticks and buys wait for it', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  ticker.reportDelivered = false;
  const started = await ticker.op({ type: 'start' });
  const [first] = await ticker.waitForUpdates(1, started.index, 1_000);
  const bought = await ticker.op({ type: 'buy', name: 'Apple' });
  // Ten tick intervals without a `delivered`: nothing more goes out (the child's own
  // timeout for a lost notice is a second).
  await expect(ticker.waitForUpdates(1, bought.index, 10 * FAST_TICK_MS)).rejects.toThrow(
    /timed out/,
  );
  const notified = ticker.messages.mark;
  ticker.sendRaw({ type: 'delivered', seq: first!.update.seq });
  // At once: the held-back buy as its own update, then the tick that came due meanwhile.
  const [buy, tick] = await ticker.waitForUpdates(2, notified, 500);
  expect(buy?.update.seq).toBe(first!.update.seq + 1);
  expect(buy?.update.stocks).toEqual(withBuy(first!.update.stocks, 'Apple'));
  expect(tick?.update.stocks).toEqual(decayAll(buy!.update.stocks));
  expect(ticker.messages.items.filter((item) => item.message.type === 'rejected')).toEqual([]);
});

test('stop replies changed:true and no update arrives for three tick intervals', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  const started = await ticker.op({ type: 'start' });
  await ticker.waitForUpdates(2, started.index, 2_000);

  const stopped = await ticker.op({ type: 'stop' });
  expectRunReply(stopped.reply, false, true);
  const late = await ticker.messages.quietFor(
    3 * FAST_TICK_MS + 30,
    (item) => item.message.type === 'update',
    stopped.index,
  );
  expect(late).toEqual([]);
  const again = await ticker.op({ type: 'stop' });
  expectRunReply(again.reply, false, false);
});

test('a state handed over running ticks tickMs after its last update, without a start', async () => {
  const tickMs = 200;
  const state = stateOf({ running: true, seq: 10, ts: Date.now() });
  const from = ticker.messages.mark;
  await ticker.init(state, tickMs);
  const [first] = await ticker.waitForUpdates(1, from, 2_000);
  expect(first?.update).toEqual({
    ...state,
    stocks: decayAll(state.stocks),
    seq: 11,
    ts: expect.any(Number),
  });
  // Not an immediate extra tick: the previous owner ticked just now, so the next one is due a
  // whole interval after that (by the update's own clock, whatever forking the child took).
  expect((first?.update.ts ?? 0) - state.ts).toBeGreaterThanOrEqual(tickMs - 1);
  const { reply } = await ticker.op({ type: 'start' });
  expectRunReply(reply, true, false);
});

test('garbage gets one rejected message each; the child stays up and unchanged', async () => {
  const state = stateOf({ seq: 20, ts: Date.now() });
  await ticker.init(state, FAST_TICK_MS);
  const garbage: unknown[] = [
    null,
    42,
    'start',
    [],
    {},
    { type: 'nope' },
    { type: 'start' },
    { type: 'start', id: 1, extra: 1 },
    { type: 'buy', id: 1, name: 'apple' },
    { type: 'buy', id: 1, name: '__proto__' },
    { type: 'buy', id: 1, name: 'x'.repeat(1 << 20) },
    { type: 'init', state: { ...state, seq: -1 }, tickMs: FAST_TICK_MS, unannounced: false },
    { type: 'init', state, tickMs: 0, unannounced: false },
  ];
  const from = ticker.messages.mark;
  for (const message of garbage) ticker.sendRaw(message);
  const rejected = await ticker.messages.waitForCount(
    garbage.length,
    (item) => item.message.type === 'rejected',
    { from, timeoutMs: 3_000, what: 'a rejection per garbage message' },
  );
  for (const { message } of rejected) {
    expect(message).toEqual({
      type: 'rejected',
      error: expect.stringMatching(/^bad message from parent: /),
    });
    expect(JSON.stringify(message).length).toBeLessThan(300);
  }
  // Only rejections came back: no reply, no update, no second ready.
  expect(ticker.messages.since(from).map((item) => item.message.type)).toEqual(
    garbage.map(() => 'rejected'),
  );

  expect(ticker.alive).toBe(true);
  const started = await ticker.op({ type: 'start' });
  expectRunReply(started.reply, true, true);
  const [first] = await ticker.waitForUpdates(1, started.index, 1_000);
  expect(first?.update.seq).toBe(21);
  expect(first?.update.stocks).toEqual(decayAll(SEED));
});

test('closing the IPC channel makes the child exit with code 0 on its own', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  const started = await ticker.op({ type: 'start' });
  // Running, so its timers alone would keep it alive.
  await ticker.waitForUpdates(1, started.index, 1_000);
  await expect(ticker.disconnect()).resolves.toEqual({ code: 0, signal: null });
});

test('SIGINT is ignored: the child keeps ticking and answering', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  const started = await ticker.op({ type: 'start' });
  await ticker.waitForUpdates(1, started.index, 1_000);

  expect(ticker.process.kill('SIGINT')).toBe(true);
  const from = ticker.messages.mark;
  await ticker.waitForUpdates(3, from, 2_000);
  const { reply } = await ticker.op({ type: 'stop' });
  expectRunReply(reply, false, true);
  expect(ticker.alive).toBe(true);
});

test('SIGTERM ends the child (the supervisor falls back to it when IPC is gone)', async () => {
  await ticker.init(stateOf({ ts: Date.now() }), FAST_TICK_MS);
  ticker.process.kill('SIGTERM');
  await expect(ticker.exited).resolves.toEqual({ code: null, signal: 'SIGTERM' });
});
