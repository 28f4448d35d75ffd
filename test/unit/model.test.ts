import type { UpdatePayload } from '../../protocol/events';
import { BUY_CONFLATION_MS, DECAY, GROWTH } from '../../protocol/stocks';
import { DELIVERY_TIMEOUT_MS, TickerModel } from '../../ticker/model';
import { FakeTimers } from '../helpers/fake-timers';
import { decayAll, grown, SEED, stateOf, withBuy } from '../helpers/prices';

const T0 = 1_700_000_000_000;
const TICK_MS = 1000;

/**
 * A model with a parent that reports every update delivered the moment it is sent (an idle
 * server), unless `slowParent`: then nothing is reported until the test calls delivered().
 */
function setup(
  state: UpdatePayload = stateOf({ ts: T0 - 5 }),
  { slowParent = false, deliveryTimeoutMs = DELIVERY_TIMEOUT_MS } = {},
): {
  model: TickerModel;
  timers: FakeTimers;
  updates: UpdatePayload[];
} {
  const timers = new FakeTimers(T0);
  const updates: UpdatePayload[] = [];
  const model: TickerModel = new TickerModel({
    state,
    tickMs: TICK_MS,
    timers,
    deliveryTimeoutMs,
    onUpdate: (update) => {
      updates.push(update);
      if (!slowParent) model.delivered(update.seq);
    },
  });
  return { model, timers, updates };
}

/** The update at `index`, failing clearly when there is none. */
function at(updates: readonly UpdatePayload[], index: number): UpdatePayload {
  const update = updates[index];
  if (!update) throw new Error(`no update #${index}; got ${updates.length}`);
  return update;
}

describe('the contract constants', () => {
  test('are the classic demo figures', () => {
    expect(DECAY).toBe(1800);
    expect(GROWTH).toBe(10);
    expect(BUY_CONFLATION_MS).toBe(20);
  });
});

describe('TickerModel', () => {
  test('starts from the state it is given, stopped, without emitting', () => {
    const { model, timers, updates } = setup();
    expect(model.snapshot()).toEqual({ stocks: SEED, running: false, seq: 0, ts: T0 - 5 });
    timers.advance(10_000);
    expect(updates).toEqual([]);
  });

  test('every tick lowers each price by exactly price / 1800', () => {
    const { model, timers, updates } = setup();
    model.start();
    timers.advance(5 * TICK_MS);
    expect(updates).toHaveLength(6);
    let expected = SEED.map((stock) => ({ ...stock }));
    for (const update of updates) {
      expected = decayAll(expected);
      // toEqual compares numbers with Object.is: exact to the bit.
      expect(update.stocks).toEqual(expected);
    }
    expect(at(updates, 0).stocks[0]?.price).toBe(14.5 - 14.5 / 1800);
  });

  test('seq grows by one with every update and ts is the clock time of the update', () => {
    // Last updated long ago: the first tick is not held back (see "start cannot speed up").
    const { model, timers, updates } = setup(stateOf({ seq: 41, ts: T0 - 60_000 }));
    model.start();
    timers.advance(0);
    timers.advance(300);
    model.buy('Apple');
    timers.advance(700);
    expect(updates.map((update) => update.seq)).toEqual([42, 43, 44]);
    expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 300, T0 + 1000]);
    expect(updates.map((update) => update.running)).toEqual([true, true, true]);
    expect(model.snapshot()).toEqual(at(updates, 2));
  });

  test('start ticks at +0 ms, then every tickMs without drift; starting again is a no-op', () => {
    const { model, timers, updates } = setup();
    expect(model.start()).toEqual({ running: true, changed: true });
    expect(model.start()).toEqual({ running: true, changed: false });
    // Not synchronously inside start(): the caller acknowledges first.
    expect(updates).toHaveLength(0);
    timers.advance(0);
    expect(updates).toHaveLength(1);
    timers.advance(999);
    expect(updates).toHaveLength(1);
    expect(model.start()).toEqual({ running: true, changed: false });
    timers.advance(2001);
    expect(updates).toHaveLength(4);
    expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 1000, T0 + 2000, T0 + 3000]);
  });

  test('stop halts the ticks; stopping twice is a no-op', () => {
    const { model, timers, updates } = setup();
    model.start();
    timers.advance(1500);
    expect(updates).toHaveLength(2);
    expect(model.stop()).toEqual({ running: false, changed: true });
    expect(model.stop()).toEqual({ running: false, changed: false });
    timers.advance(10_000);
    expect(updates).toHaveLength(2);
    expect(model.snapshot()).toEqual({ ...at(updates, 1), running: false });
    expect(timers.pending).toBe(0);
  });

  describe('start cannot speed the market up', () => {
    /** Alternates stop and start every `paceMs` until `until`, as a client at the rate limit. */
    function toggle(model: TickerModel, timers: FakeTimers, paceMs: number, until: number): void {
      while (timers.now() + paceMs <= until) {
        timers.advance(paceMs);
        if (model.snapshot().running) model.stop();
        else model.start();
      }
    }

    test('toggling at 50 ops/s for five intervals ticks at most once per interval', () => {
      const { model, timers, updates } = setup();
      model.start();
      toggle(model, timers, 20, T0 + 5 * TICK_MS);
      timers.advance(0);
      const ts = updates.map((update) => update.ts);
      expect(ts.length).toBeLessThanOrEqual(5 + 1);
      for (let i = 1; i < ts.length; i++) {
        expect((ts[i] ?? 0) - (ts[i - 1] ?? 0)).toBeGreaterThanOrEqual(TICK_MS);
      }
      // Starts land on every 40 ms, so each interval's tick comes exactly when due.
      expect(ts).toEqual([0, 1, 2, 3, 4, 5].map((k) => T0 + k * TICK_MS));
    });

    test('a start within an interval of the last tick ticks when the interval is up', () => {
      const { model, timers, updates } = setup();
      model.start();
      timers.advance(100);
      model.stop();
      timers.advance(200);
      model.start();
      timers.advanceTo(T0 + TICK_MS - 1);
      expect(updates).toHaveLength(1);
      timers.advanceTo(T0 + 3 * TICK_MS);
      // And then at the normal pace, on the grid of the first tick.
      expect(updates.map((update) => update.ts)).toEqual([
        T0,
        T0 + TICK_MS,
        T0 + 2 * TICK_MS,
        T0 + 3 * TICK_MS,
      ]);
    });

    test('a start a tick interval or more after the last tick ticks on the next turn', () => {
      const { model, timers, updates } = setup();
      model.start();
      timers.advance(0);
      model.stop();
      timers.advance(TICK_MS);
      model.start();
      // Never inside start(): the caller acknowledges first.
      expect(updates).toHaveLength(1);
      timers.advance(0);
      expect(updates.map((update) => update.ts)).toEqual([T0, T0 + TICK_MS]);
    });

    test('buys do not count as ticks', () => {
      const { model, timers, updates } = setup();
      model.start();
      timers.advance(0);
      model.stop();
      timers.advance(500);
      model.buy('Apple');
      timers.advance(100);
      model.start();
      timers.advanceTo(T0 + TICK_MS);
      expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 500, T0 + TICK_MS]);
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
    timers.advance(0);
    expect(updates).toHaveLength(1);
    timers.advanceTo(T0 + 4499);
    expect(updates).toHaveLength(1);
    timers.advanceTo(T0 + 4500);
    expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 4500]);
  });

  test('buy raises the price by exactly price / 10 and returns the new price', () => {
    const { model } = setup();
    const bought = (name: 'Apple' | 'Microsoft' | 'Facebook') => {
      const result = model.buy(name);
      if (!result.ok) throw new Error(result.error);
      return result.stock;
    };
    expect(bought('Apple')).toEqual({ name: 'Apple', price: 14.5 + 14.5 / 10 });
    expect(bought('Apple')).toEqual({ name: 'Apple', price: grown(14.5, 2) });
    expect(bought('Microsoft')).toEqual({ name: 'Microsoft', price: 43 + 43 / 10 });
    expect(bought('Facebook').price).toBe(37.75 + 37.75 / 10);
    expect(model.snapshot().stocks).toEqual([
      { name: 'Apple', price: grown(14.5, 2) },
      { name: 'Microsoft', price: grown(43) },
      { name: 'Facebook', price: grown(37.75) },
    ]);
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
    // Other stocks are still bought as usual.
    expect(model.buy('Microsoft')).toEqual({
      ok: true,
      stock: { name: 'Microsoft', price: grown(43) },
    });
  });

  test('a single buy is broadcast as one update at +0 ms, also while stopped and after a quiet spell', () => {
    const { model, timers, updates } = setup();
    const bought = model.buy('Microsoft');
    expect(updates).toHaveLength(0);
    timers.advance(0);
    expect(updates).toEqual([
      { stocks: withBuy(SEED, 'Microsoft'), running: false, seq: 1, ts: T0 },
    ]);
    expect(bought).toEqual({ ok: true, stock: at(updates, 0).stocks[1] });
    timers.advance(10_000);
    expect(updates).toHaveLength(1);
    // After a quiet spell, the next buy is flushed at once again.
    model.buy('Apple');
    timers.advance(0);
    expect(updates.map((update) => update.ts)).toEqual([T0, T0 + 10_000]);
  });

  test('five synchronous buys go out as one update with 1.1^5 growth', () => {
    const { model, timers, updates } = setup();
    for (let i = 0; i < 5; i++) model.buy('Apple');
    timers.advance(0);
    expect(updates).toEqual([
      { stocks: withBuy(SEED, 'Apple', 5), running: false, seq: 1, ts: T0 },
    ]);
  });

  test('five buys within 20 ms are conflated into at most two updates', () => {
    const { model, timers, updates } = setup();
    for (let i = 0; i < 5; i++) {
      model.buy('Apple');
      timers.advance(4);
    }
    timers.advance(100);
    // Leading edge at +0 with the first buy, one trailing update at +20 with the other four.
    expect(updates).toEqual([
      { stocks: withBuy(SEED, 'Apple', 1), running: false, seq: 1, ts: T0 },
      { stocks: withBuy(SEED, 'Apple', 5), running: false, seq: 2, ts: T0 + 20 },
    ]);
    expect(model.snapshot().stocks[0]?.price).toBe(grown(14.5, 5));
  });

  test('buys of different stocks in one window are one update', () => {
    const { model, timers, updates } = setup();
    model.buy('Apple');
    timers.advance(1);
    model.buy('Facebook');
    model.buy('Microsoft');
    timers.advance(2);
    model.buy('Facebook');
    timers.advance(50);
    expect(updates).toHaveLength(2);
    expect(at(updates, 1).stocks).toEqual([
      { name: 'Apple', price: grown(14.5) },
      { name: 'Microsoft', price: grown(43) },
      { name: 'Facebook', price: grown(37.75, 2) },
    ]);
    expect(at(updates, 1).ts).toBe(T0 + 20);
  });

  describe('flow control: a parent still broadcasting holds buys back', () => {
    test('buys after an undelivered update wait for delivered(), then go out as one', () => {
      const { model, timers, updates } = setup(undefined, { slowParent: true });
      model.buy('Apple');
      timers.advance(0);
      for (let i = 0; i < 4; i++) {
        model.buy('Facebook');
        timers.advance(100);
      }
      expect(updates.map((update) => update.seq)).toEqual([1]);
      model.delivered(1);
      timers.advance(0);
      expect(updates).toEqual([
        { stocks: withBuy(SEED, 'Apple'), running: false, seq: 1, ts: T0 },
        {
          stocks: withBuy(withBuy(SEED, 'Apple'), 'Facebook', 4),
          running: false,
          seq: 2,
          ts: T0 + 400,
        },
      ]);
    });

    test('delivered() soon after a flush still keeps the conflation window', () => {
      const { model, timers, updates } = setup(undefined, { slowParent: true });
      model.buy('Apple');
      timers.advance(0);
      model.buy('Apple');
      timers.advance(5);
      model.delivered(1);
      timers.advance(14);
      expect(updates).toHaveLength(1);
      timers.advance(1);
      expect(updates.map((update) => update.ts)).toEqual([T0, T0 + BUY_CONFLATION_MS]);
    });

    test('a lost delivered notice delays buys by deliveryTimeoutMs at most', () => {
      const { model, timers, updates } = setup(undefined, { slowParent: true });
      model.buy('Apple');
      timers.advance(0);
      model.buy('Apple');
      timers.advance(DELIVERY_TIMEOUT_MS - 1);
      expect(updates).toHaveLength(1);
      timers.advance(1);
      expect(updates.map((update) => update.ts)).toEqual([T0, T0 + DELIVERY_TIMEOUT_MS]);
    });

    test('a tick that comes due during a broadcast waits for it, and takes pending buys', () => {
      // A broadcast slower than the tick interval (and than the default timeout).
      const { model, timers, updates } = setup(undefined, {
        slowParent: true,
        deliveryTimeoutMs: 5 * TICK_MS,
      });
      model.start();
      timers.advance(0);
      model.buy('Apple');
      timers.advance(TICK_MS + 250);
      // Update 1 (the first tick) was never reported delivered: nothing more went out.
      expect(updates.map((update) => update.seq)).toEqual([1]);
      model.delivered(1);
      // The waiting tick runs at once: the buy first, as its own update, then the tick.
      expect(updates.map((update) => [update.seq, update.ts])).toEqual([
        [1, T0],
        [2, T0 + TICK_MS + 250],
        [3, T0 + TICK_MS + 250],
      ]);
      expect(at(updates, 1).stocks).toEqual(withBuy(decayAll(SEED), 'Apple'));
      expect(at(updates, 2).stocks).toEqual(decayAll(withBuy(decayAll(SEED), 'Apple')));
      // And the ticker keeps its beat: the next tick is on the original grid.
      model.delivered(3);
      timers.advanceTo(T0 + 2 * TICK_MS - 1);
      expect(updates).toHaveLength(3);
      timers.advance(1);
      expect(at(updates, 3).ts).toBe(T0 + 2 * TICK_MS);
    });

    test('a tick waits deliveryTimeoutMs at most for a lost notice, even after a buy flush', () => {
      const timeout = 2.5 * TICK_MS;
      const { model, timers, updates } = setup(undefined, {
        slowParent: true,
        deliveryTimeoutMs: timeout,
      });
      model.start();
      timers.advance(0);
      // A buy that goes out on its own timeout moves the last emit later; the tick's wait
      // still counts from when the tick was due.
      model.buy('Apple');
      timers.advance(TICK_MS + timeout);
      expect(updates.map((update) => update.ts)).toEqual([
        T0,
        T0 + timeout,
        T0 + TICK_MS + timeout,
      ]);
    });

    test('stop while a tick waits cancels it', () => {
      const { model, timers, updates } = setup(undefined, {
        slowParent: true,
        deliveryTimeoutMs: 5 * TICK_MS,
      });
      model.start();
      timers.advance(TICK_MS);
      model.stop();
      model.delivered(1);
      timers.advance(10 * TICK_MS);
      expect(updates).toHaveLength(1);
    });

    test('stale and future notices are harmless', () => {
      const { model, timers, updates } = setup(stateOf({ seq: 10, ts: T0 }), {
        slowParent: true,
      });
      model.delivered(3);
      model.delivered(99);
      model.buy('Apple');
      timers.advance(0);
      model.buy('Apple');
      // Delivery of seq 11 was never reported (99 was beyond anything sent), so the second
      // buy waits.
      timers.advance(DELIVERY_TIMEOUT_MS - 1);
      expect(updates.map((update) => update.seq)).toEqual([11]);
      model.delivered(11);
      timers.advance(0);
      expect(updates.map((update) => update.seq)).toEqual([11, 12]);
    });
  });

  test('a tick flushes pending buys first as their own update, seq consecutive', () => {
    const { model, timers, updates } = setup();
    model.start();
    timers.advance(0); // tick #1 at T0
    timers.advanceTo(T0 + 985);
    model.buy('Apple'); // leading edge, flushed at once
    timers.advance(0);
    timers.advanceTo(T0 + 995);
    model.buy('Facebook'); // trailing, due at T0 + 1005, but the tick at T0 + 1000 comes first
    timers.advanceTo(T0 + 1000);

    expect(updates).toHaveLength(4);
    const [tick1, buy1, buy2, tick2] = updates as [
      UpdatePayload,
      UpdatePayload,
      UpdatePayload,
      UpdatePayload,
    ];
    expect(updates.map((update) => update.seq)).toEqual([1, 2, 3, 4]);
    expect(buy1).toEqual({
      stocks: withBuy(tick1.stocks, 'Apple'),
      running: true,
      seq: 2,
      ts: T0 + 985,
    });
    expect(buy2).toEqual({
      stocks: withBuy(buy1.stocks, 'Facebook'),
      running: true,
      seq: 3,
      ts: T0 + 1000,
    });
    expect(tick2).toEqual({ stocks: decayAll(buy2.stocks), running: true, seq: 4, ts: T0 + 1000 });

    // The trailing flush that was due at +1005 was cancelled by the tick.
    timers.advanceTo(T0 + 1999);
    expect(updates).toHaveLength(4);
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
      expect(model.start()).toEqual({ running: true, changed: !running });
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

  test('a state handed over with unannounced buys is broadcast once at +0 ms, prices unchanged', () => {
    const timers = new FakeTimers(T0);
    const updates: UpdatePayload[] = [];
    const handed = stateOf({ stocks: withBuy(SEED, 'Apple'), seq: 7, ts: T0 - 5 });
    new TickerModel({
      state: handed,
      tickMs: TICK_MS,
      timers,
      unannounced: true,
      onUpdate: (update) => updates.push(update),
    });
    expect(updates).toEqual([]);
    timers.advance(0);
    expect(updates).toEqual([{ ...handed, seq: 8, ts: T0 }]);
    timers.advance(10_000);
    expect(updates).toHaveLength(1);
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
    expect(timers.pending).toBe(2);
    model.dispose();
    expect(timers.pending).toBe(0);
    timers.advance(10_000);
    expect(updates).toHaveLength(1);
  });
});
