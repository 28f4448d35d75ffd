/**
 * The real compiled ticker child, forked as the server forks it, driven over real IPC: what
 * only a process shows (the wiring in ticker/main.ts, real timers, JSON serialization, the
 * channel and signals). What it answers to each message is test/unit/child.test.ts's.
 */
import { ForkedTicker } from '../helpers/forked-ticker';
import { decayAll, grown, priceOf, stateOf, withBuy } from '../helpers/prices';

const TICK_MS = 250;

let ticker: ForkedTicker;

beforeEach(() => {
  ticker = ForkedTicker.fork();
});

afterEach(async () => {
  await ForkedTicker.killAll();
  expect(ticker.malformed).toEqual([]);
});

/** Init with the seed just updated, start, and wait for the first tick. */
async function running(tickMs = TICK_MS) {
  await ticker.init(stateOf({ ts: Date.now() }), tickMs);
  const started = await ticker.op({ type: 'start' });
  const [first] = await ticker.waitForUpdates(1, started.index, 1_000);
  return { started, first: first! };
}

test('over IPC: ready, ticks at the pace on real timers, buys, flow control, garbage, stop', async () => {
  const state = stateOf({ seq: 3, ts: Date.now() });
  await expect(ticker.init(state, TICK_MS)).resolves.toEqual(state);
  const started = await ticker.op({ type: 'start' });
  expect(started.reply).toEqual({ ok: true, running: true, changed: true });
  const ticks = await ticker.waitForUpdates(4, started.index, 3_000);
  // The first tick at once; then one per interval by both clocks (a `delivered` notice lost
  // on the way would hold each tick back a second); each the exact decay of the one before.
  expect(ticks[0]!.at - started.at).toBeLessThan(150);
  let previous = { update: state, at: Number.NaN };
  for (const tick of ticks) {
    expect(tick.update).toEqual({
      stocks: decayAll(previous.update.stocks),
      running: true,
      seq: previous.update.seq + 1,
      ts: expect.any(Number),
    });
    if (previous.update !== state)
      for (const gap of [tick.at - previous.at, tick.update.ts - previous.update.ts]) {
        expect(gap).toBeGreaterThanOrEqual(150);
        expect(gap).toBeLessThanOrEqual(450);
      }
    previous = tick;
  }

  // A buy is applied to the last update sent before its reply, and is an update of its own.
  const bought = await ticker.op({ type: 'buy', name: 'Microsoft' });
  const before = ticker.messages.items
    .slice(0, bought.index)
    .flatMap(({ message }) => (message.type === 'update' ? [message.update] : []))
    .at(-1)!;
  expect(bought.reply).toEqual({
    ok: true,
    running: true,
    stock: { name: 'Microsoft', price: grown(priceOf(before.stocks, 'Microsoft')) },
  });
  const [next] = await ticker.waitForUpdates(1, bought.index, 1_000);
  expect(next!.update).toMatchObject({ seq: before.seq + 1 });
  expect(next!.update.stocks).toEqual(withBuy(before.stocks, 'Microsoft'));
  expect(next!.at - bought.at).toBeLessThan(100);

  // Without `delivered` for an update, neither ticks nor buys follow it; the notice sent over
  // the channel lets the held-back buy out, then the tick that came due.
  ticker.reportDelivered = false;
  const [held] = await ticker.waitForUpdates(1, ticker.messages.mark, 1_000);
  const heldBuy = await ticker.op({ type: 'buy', name: 'Apple' });
  await expect(ticker.waitForUpdates(1, heldBuy.index, 2 * TICK_MS)).rejects.toThrow(/timed out/);
  const notified = ticker.messages.mark;
  ticker.sendRaw({ type: 'delivered', seq: held!.update.seq });
  const [buy, tick] = await ticker.waitForUpdates(2, notified, 500);
  expect(buy!.update).toMatchObject({ seq: held!.update.seq + 1 });
  expect(buy!.update.stocks).toEqual(withBuy(held!.update.stocks, 'Apple'));
  expect(tick!.update.stocks).toEqual(decayAll(buy!.update.stocks));
  ticker.sendRaw({ type: 'delivered', seq: tick!.update.seq });
  ticker.reportDelivered = true;

  const stopped = await ticker.op({ type: 'stop' });
  expect(stopped.reply).toEqual({ ok: true, running: false, changed: true });
  const quiet = (item: { message: { type: string } }) => item.message.type === 'update';
  await expect(ticker.messages.quietFor(3 * TICK_MS, quiet, stopped.index)).resolves.toEqual([]);
  const last = ticker.updatesSince(0).at(-1)!.update;

  // Whatever JSON can carry: one short rejection each, and the child unchanged.
  const garbage = [
    null,
    42,
    'start',
    [],
    { type: 'nope' },
    { type: 'buy', id: 1, name: 'x'.repeat(1 << 20) },
  ];
  const from = ticker.messages.mark;
  for (const message of garbage) ticker.sendRaw(message);
  await ticker.messages.waitForCount(garbage.length, () => true, {
    from,
    timeoutMs: 3_000,
    what: 'a rejection per garbage message',
  });
  for (const { message } of ticker.messages.since(from)) {
    expect(message).toEqual({ type: 'rejected', error: expect.stringMatching(/^bad message/) });
    expect(JSON.stringify(message).length).toBeLessThan(300);
  }
  const again = await ticker.op({ type: 'start' });
  expect(again.reply).toEqual({ ok: true, running: true, changed: true });
  const [resumed] = await ticker.waitForUpdates(1, again.index, 1_000);
  expect(resumed!.update).toMatchObject({ seq: last.seq + 1, stocks: decayAll(last.stocks) });
});

test('SIGINT is ignored (Ctrl-C reaches the whole group); SIGTERM ends the child', async () => {
  await running(100);
  expect(ticker.process.kill('SIGINT')).toBe(true);
  await ticker.waitForUpdates(3, ticker.messages.mark, 2_000);
  const { reply } = await ticker.op({ type: 'stop' });
  expect(reply).toEqual({ ok: true, running: false, changed: true });
  ticker.process.kill('SIGTERM');
  await expect(ticker.exited).resolves.toEqual({ code: null, signal: 'SIGTERM' });
});

test('closing the IPC channel makes a running child exit with code 0 on its own', async () => {
  // Running, so its timers alone would keep it alive.
  await running(100);
  await expect(ticker.disconnect()).resolves.toEqual({ code: 0, signal: null });
});

// A message the child sends after the parent closed the channel but before the child has
// handled 'disconnect' (here: the `ready` answering an init already in the pipe) fails with
// EPIPE; the child must still leave quietly, not die of an unhandled error.
test('a child whose server hangs up while it answers exits quietly', async () => {
  const child = ForkedTicker.fork({ pipeStderr: true });
  child.sendRaw({
    type: 'init',
    state: stateOf({ ts: Date.now() }),
    tickMs: 1_000,
    unannounced: false,
  });
  await expect(child.disconnect(2_000)).resolves.toEqual({ code: 0, signal: null });
  await expect(child.stderr).resolves.toBe('');
});
