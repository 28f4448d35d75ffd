import type { UpdatePayload } from '../../protocol/events';
import { DELIVERY_TIMEOUT_MS, TickerModel } from '../../ticker/model';
import { FakeTimers } from '../helpers/fake-timers';
import { decayAll, grown, SEED, stateOf, withBuy } from '../helpers/prices';

const T0 = 1_700_000_000_000;
const TICK_MS = 1000;

/**
 * A model with a parent that reports every update delivered the moment it is sent (an idle
 * server), unless `slowParent`: then nothing is reported until the test calls delivered().
 * `stallOnFirst` ms pass on the clock while the first update is sent.
 */
function setup(
  state: UpdatePayload = stateOf({ ts: T0 - 5 }),
  { slowParent = false, tickMs = TICK_MS, unannounced = false } = {},
) {
  const timers = new FakeTimers(T0);
  const updates: UpdatePayload[] = [];
  const model: TickerModel = new TickerModel({
    state,
    tickMs,
    timers,
    unannounced,
    onUpdate: (update) => {
      updates.push(update);
      if (!slowParent) model.delivered(update.seq);
    },
  });
  /** The updates as `seq@ms after T0`. */
  const sent = () => updates.map((update) => `${update.seq}@${update.ts - T0}`).join(' ');
  return { model, timers, updates, sent };
}

test('starts from the state it is given, stopped, without emitting', () => {
  const { model, timers, updates } = setup();
  expect(model.snapshot()).toEqual({ stocks: SEED, running: false, seq: 0, ts: T0 - 5 });
  timers.advance(10_000);
  expect(updates).toEqual([]);
});

test('a tick lowers each price by exactly price / 1800; seq + 1 and the clock time each update', () => {
  const { model, timers, updates, sent } = setup(stateOf({ seq: 41, ts: T0 - 60_000 }));
  model.start();
  timers.advance(300);
  model.buy('Apple');
  timers.advance(2700);
  expect(sent()).toBe('42@0 43@300 44@1000 45@2000 46@3000');
  let expected = SEED.map((stock) => ({ ...stock }));
  for (const update of updates) {
    expected = update.seq === 43 ? withBuy(expected, 'Apple') : decayAll(expected);
    // toEqual compares numbers with Object.is: exact to the bit.
    expect(update).toEqual({ stocks: expected, running: true, seq: update.seq, ts: update.ts });
  }
  expect(updates[0]!.stocks[0]!.price).toBe(14.5 - 14.5 / 1800);
  expect(model.snapshot()).toEqual(updates.at(-1));
});

test('start ticks on the next turn, then every tickMs without drift; a second start is a no-op', () => {
  const { model, timers, sent } = setup();
  expect(model.start()).toEqual({ ok: true, running: true, changed: true });
  expect(model.start()).toEqual({ ok: true, running: true, changed: false });
  // Not synchronously inside start(): the caller acknowledges first.
  expect(sent()).toBe('');
  timers.advance(999);
  expect(sent()).toBe('1@0');
  expect(model.start()).toEqual({ ok: true, running: true, changed: false });
  timers.advance(2001);
  expect(sent()).toBe('1@0 2@1000 3@2000 4@3000');
});

test('stop halts the ticks and leaves no timer; stopping twice is a no-op', () => {
  const { model, timers, updates } = setup();
  model.start();
  timers.advance(1500);
  expect(model.stop()).toEqual({ ok: true, running: false, changed: true });
  expect(model.stop()).toEqual({ ok: true, running: false, changed: false });
  expect(timers.pending).toBe(0);
  timers.advance(10_000);
  expect(updates).toHaveLength(2);
  expect(model.snapshot()).toEqual({ ...updates[1], running: false });
});

describe('start cannot speed the market up', () => {
  test('toggling at 50 ops/s for five intervals ticks exactly once per interval', () => {
    const { model, timers, sent } = setup();
    model.start();
    while (timers.now() + 20 <= T0 + 5 * TICK_MS) {
      timers.advance(20);
      if (model.snapshot().running) model.stop();
      else model.start();
    }
    timers.advance(0);
    // Starts land on every 40 ms, so each interval's tick comes exactly when due.
    expect(sent()).toBe('1@0 2@1000 3@2000 4@3000 5@4000 6@5000');
  });

  // After a tick at +0 (and a buy at +500, which is no tick), stop, then start at `startAt`.
  test.each([
    [
      'within an interval of the last tick ticks when the interval is up',
      600,
      2000,
      '3@1000 4@2000',
    ],
    ['an interval or more after the last tick ticks on the next turn', 1000, 2000, '3@1000 4@2000'],
    ['a while after the last tick keeps its own grid from then', 1700, 2700, '3@1700 4@2700'],
  ])('a start %s', (_, startAt, until, ticks) => {
    const { model, timers, sent } = setup();
    model.start();
    timers.advance(100);
    model.stop();
    timers.advanceTo(T0 + 500);
    model.buy('Apple');
    timers.advanceTo(T0 + startAt);
    model.start();
    timers.advanceTo(T0 + until);
    expect(sent()).toBe(`1@0 2@500 ${ticks}`);
  });
});

test('skips missed ticks after a stall instead of bursting', () => {
  const timers = new FakeTimers(T0);
  const updates: UpdatePayload[] = [];
  const model: TickerModel = new TickerModel({
    state: stateOf(),
    tickMs: TICK_MS,
    timers,
    onUpdate: (update) => {
      updates.push(update);
      // The first tick's broadcast blocks the loop for 3.5 intervals, then is delivered.
      if (updates.length === 1) timers.advance(3500);
      model.delivered(update.seq);
    },
  });
  model.start();
  timers.advanceTo(T0 + 4499);
  expect(updates).toHaveLength(1);
  timers.advanceTo(T0 + 4500);
  expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 4500]);
});

test('buy raises the price by exactly price / 10 and returns the new price', () => {
  const { model } = setup();
  const bought = (name: 'Apple' | 'Microsoft' | 'Facebook') => model.buy(name);
  const ok = (name: string, price: number) => ({
    ok: true,
    running: false,
    stock: { name, price },
  });
  expect(bought('Apple')).toEqual(ok('Apple', 14.5 + 14.5 / 10));
  expect(bought('Apple')).toEqual(ok('Apple', grown(14.5, 2)));
  expect(bought('Microsoft')).toEqual(ok('Microsoft', 43 + 43 / 10));
  expect(bought('Facebook')).toEqual(ok('Facebook', 37.75 + 37.75 / 10));
  expect(model.snapshot().stocks).toEqual(
    withBuy(withBuy(withBuy(SEED, 'Apple', 2), 'Microsoft'), 'Facebook'),
  );
});

test('a buy that would take a price past the largest number is refused and changes nothing', () => {
  // A price one buy (× 1.1) from overflowing to Infinity.
  const top = Number.MAX_VALUE / 1.05;
  const { model, timers, updates } = setup(
    stateOf({ stocks: [{ name: 'Apple', price: top }, ...SEED.slice(1)], ts: T0 - 5 }),
  );
  const before = model.snapshot();
  expect(model.buy('Apple')).toEqual({
    ok: false,
    error: 'Apple is at the highest price forkcast can show',
  });
  timers.advance(100);
  expect(updates).toEqual([]);
  expect(model.snapshot()).toEqual(before);
  expect(model.buy('Microsoft')).toMatchObject({ ok: true, stock: { price: grown(43) } });
});

describe('buys are conflated into updates', () => {
  test('buys in one turn are one update on the next turn, also while stopped', () => {
    const { model, timers, updates } = setup();
    for (let i = 0; i < 5; i++) model.buy('Apple');
    model.buy('Facebook');
    expect(updates).toHaveLength(0);
    timers.advance(0);
    const stocks = withBuy(withBuy(SEED, 'Apple', 5), 'Facebook');
    expect(updates).toEqual([{ stocks, running: false, seq: 1, ts: T0 }]);
    // After a quiet spell, the next buy is flushed at once again.
    timers.advance(10_000);
    model.buy('Apple');
    timers.advance(0);
    expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 10_000]);
  });

  test('buys within 20 ms of the first go out as at most two updates', () => {
    const { model, timers, updates } = setup();
    for (const name of ['Apple', 'Apple', 'Facebook', 'Microsoft', 'Apple'] as const) {
      model.buy(name);
      timers.advance(4);
    }
    timers.advance(100);
    // Leading edge at +0 with the first buy, one trailing update at +20 with the other four.
    expect(updates).toEqual([
      { stocks: withBuy(SEED, 'Apple', 1), running: false, seq: 1, ts: T0 },
      {
        stocks: withBuy(withBuy(withBuy(SEED, 'Apple', 3), 'Facebook'), 'Microsoft'),
        running: false,
        seq: 2,
        ts: T0 + 20,
      },
    ]);
  });

  test('a tick flushes pending buys first as their own update, seq consecutive', () => {
    const { model, timers, updates, sent } = setup();
    model.start();
    timers.advanceTo(T0 + 985);
    model.buy('Apple'); // leading edge, flushed at once
    timers.advanceTo(T0 + 995);
    model.buy('Facebook'); // trailing, due at +1005, but the tick at +1000 comes first
    timers.advanceTo(T0 + 1999);
    expect(sent()).toBe('1@0 2@985 3@1000 4@1000');
    const [tick1, buy1, buy2, tick2] = updates;
    expect(buy1!.stocks).toEqual(withBuy(tick1!.stocks, 'Apple'));
    expect(buy2!.stocks).toEqual(withBuy(buy1!.stocks, 'Facebook'));
    expect(tick2!.stocks).toEqual(decayAll(buy2!.stocks));
  });
});

describe('flow control: a parent still broadcasting holds the next update back', () => {
  const slow = (tickMs = TICK_MS) => setup(undefined, { slowParent: true, tickMs });

  test('buys after an undelivered update wait for delivered(), then go out as one', () => {
    const { model, timers, updates, sent } = slow();
    model.buy('Apple');
    timers.advance(0);
    for (let i = 0; i < 4; i++) {
      model.buy('Facebook');
      timers.advance(100);
    }
    expect(sent()).toBe('1@0');
    model.delivered(1);
    timers.advance(0);
    expect(sent()).toBe('1@0 2@400');
    expect(updates[1]!.stocks).toEqual(withBuy(withBuy(SEED, 'Apple'), 'Facebook', 4));
  });

  test('delivered() soon after a flush still keeps the conflation window', () => {
    const { model, timers, sent } = slow();
    model.buy('Apple');
    timers.advance(0);
    model.buy('Apple');
    timers.advance(5);
    model.delivered(1);
    timers.advance(14);
    expect(sent()).toBe('1@0');
    timers.advance(1);
    expect(sent()).toBe('1@0 2@20');
  });

  test('a lost delivered notice delays buys by DELIVERY_TIMEOUT_MS at most', () => {
    const { model, timers, sent } = slow();
    model.buy('Apple');
    timers.advance(0);
    model.buy('Apple');
    timers.advance(DELIVERY_TIMEOUT_MS - 1);
    expect(sent()).toBe('1@0');
    timers.advance(1);
    expect(sent()).toBe(`1@0 2@${DELIVERY_TIMEOUT_MS}`);
  });

  test('a tick that comes due during a broadcast waits for it, and takes pending buys', () => {
    // A broadcast slower than the tick interval: five ticks' worth of delivery timeout.
    const tick = DELIVERY_TIMEOUT_MS / 5;
    const { model, timers, updates, sent } = slow(tick);
    model.start();
    timers.advance(0);
    model.buy('Apple');
    timers.advance(tick + 50);
    expect(sent()).toBe('1@0');
    model.delivered(1);
    // The waiting tick runs on the next turn: the buy first, as its own update, then the tick.
    timers.advance(0);
    expect(sent()).toBe(`1@0 2@${tick + 50} 3@${tick + 50}`);
    expect(updates[1]!.stocks).toEqual(withBuy(decayAll(SEED), 'Apple'));
    expect(updates[2]!.stocks).toEqual(decayAll(updates[1]!.stocks));
    // And the ticker keeps its beat: the next tick is on the original grid.
    model.delivered(3);
    timers.advanceTo(T0 + 2 * tick - 1);
    expect(updates).toHaveLength(3);
    timers.advance(1);
    expect(sent()).toMatch(new RegExp(` 4@${2 * tick}$`));
  });

  test('a tick waits DELIVERY_TIMEOUT_MS at most for a lost notice, even after a buy flush', () => {
    const tick = DELIVERY_TIMEOUT_MS / 2.5;
    const { model, timers, sent } = slow(tick);
    model.start();
    timers.advance(0);
    // A buy that goes out on its own timeout moves the last update later; the tick's wait still
    // counts from when the tick was due.
    model.buy('Apple');
    timers.advance(tick + DELIVERY_TIMEOUT_MS);
    expect(sent()).toBe(`1@0 2@${DELIVERY_TIMEOUT_MS} 3@${tick + DELIVERY_TIMEOUT_MS}`);
  });

  test('stop while a tick waits cancels it', () => {
    const { model, timers, updates } = slow(DELIVERY_TIMEOUT_MS / 5);
    model.start();
    timers.advance(DELIVERY_TIMEOUT_MS / 5);
    model.stop();
    model.delivered(1);
    timers.advance(10 * TICK_MS);
    expect(updates).toHaveLength(1);
  });

  test('stale and future notices are harmless', () => {
    const { model, timers, sent } = setup(stateOf({ seq: 10, ts: T0 }), { slowParent: true });
    model.delivered(3);
    model.delivered(99);
    model.buy('Apple');
    timers.advance(0);
    model.buy('Apple');
    // Delivery of seq 11 was never reported (99 was beyond anything sent), so the second waits.
    timers.advance(DELIVERY_TIMEOUT_MS - 1);
    expect(sent()).toBe('11@0');
    model.delivered(11);
    timers.advance(0);
    expect(sent()).toBe(`11@0 12@${DELIVERY_TIMEOUT_MS - 1}`);
  });
});

// A state last updated at `ts` ticks an interval after that update: at once if that is past,
// an interval from now at most if it is stamped by a clock ahead of ours, and at once if it
// was never updated. Alike whether it is started or handed over running.
test.each<[string, number, Partial<UpdatePayload>]>([
  ['updated 400 ms ago', TICK_MS - 400, { seq: 7, ts: T0 - 400 }],
  ['updated long ago', 0, { seq: 7, ts: T0 - 60_000 }],
  ['stamped by a clock ahead of ours', TICK_MS, { seq: 7, ts: T0 + 60_000 }],
  ['never updated (seq 0, a fresh seed)', 0, { seq: 0, ts: T0 }],
])('a state %s first ticks at +%d ms, then at the pace', (_, first, last) => {
  for (const running of [false, true]) {
    const handed = stateOf({ ...last, running });
    const { model, timers, updates } = setup(handed);
    expect(model.snapshot()).toEqual(handed);
    expect(model.start()).toEqual({ ok: true, running: true, changed: !running });
    timers.advance(Math.max(0, first - 1));
    if (first > 0) expect(updates).toEqual([]);
    timers.advance(first > 0 ? 1 : 0);
    const seq = (last.seq ?? 0) + 1;
    expect(updates).toEqual([{ stocks: decayAll(SEED), running: true, seq, ts: T0 + first }]);
    timers.advance(TICK_MS - 1);
    expect(updates).toHaveLength(1);
    timers.advance(1);
    expect(updates).toHaveLength(2);
  }
});

test('a state handed over with unannounced buys is broadcast once on the next turn, prices unchanged', () => {
  const handed = stateOf({ stocks: withBuy(SEED, 'Apple'), seq: 7, ts: T0 - 5 });
  const { timers, updates } = setup(handed, { unannounced: true });
  expect(updates).toEqual([]);
  timers.advance(10_000);
  expect(updates).toEqual([{ ...handed, seq: 8, ts: T0 }]);
});

test('the state given, the snapshot and the stock a buy returns are copies', () => {
  const handed = stateOf({ ts: T0 - 5 });
  const { model } = setup(handed);
  handed.stocks[0]!.price = 1;
  const snapshot = model.snapshot();
  snapshot.stocks[1]!.price = 999;
  snapshot.stocks.push({ name: 'Apple', price: 1 });
  snapshot.seq = 100;
  snapshot.running = true;
  const bought = model.buy('Facebook');
  if (bought.ok) bought.stock.price = 1;
  expect(model.snapshot()).toEqual({
    stocks: withBuy(SEED, 'Facebook'),
    running: false,
    seq: 0,
    ts: T0 - 5,
  });
});

test('dispose cancels the tick and any pending buy flush', () => {
  const { model, timers, updates } = setup();
  model.start();
  timers.advance(0);
  model.buy('Apple');
  expect(timers.pending).toBe(1);
  model.dispose();
  expect(timers.pending).toBe(0);
  timers.advance(10_000);
  expect(updates).toHaveLength(1);
});
