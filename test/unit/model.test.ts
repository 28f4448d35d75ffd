import type { UpdatePayload } from '../../protocol/events';
import { LAST_SEQ, type StockName } from '../../protocol/stocks';
import { DELIVERY_TIMEOUT_MS as D, TickerModel } from '../../ticker/model';
import { decayAll, decayed, grown, SEED, stateOf, T0, withBuy } from '../helpers/prices';

const TICK_MS = 1000;

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

const advanceTo = (msAfterT0: number) => jest.advanceTimersByTime(T0 + msAfterT0 - Date.now());

/** A model whose parent reports each update delivered at once (an idle server), unless
 * `slowParent` (then when the test says so); `stall` ms pass while the first update is sent. */
function setup(
  state: UpdatePayload = stateOf({ ts: T0 - 5 }),
  { slowParent = false, tickMs = TICK_MS, unannounced = false, stall = 0 } = {},
) {
  const updates: UpdatePayload[] = [];
  const model: TickerModel = new TickerModel({
    state,
    tickMs,
    unannounced,
    timers: { now: Date.now, setTimeout, clearTimeout },
    onUpdate: (update) => {
      updates.push(update);
      if (updates.length === 1 && stall > 0) jest.setSystemTime(Date.now() + stall);
      if (!slowParent) model.delivered(update.seq);
    },
  });
  /** The updates as `seq@ms after T0`. */
  const sent = () => updates.map((update) => `${update.seq}@${update.ts - T0}`).join(',');
  /** Plays a script: `start`, `stop`, `dispose`, `buy:Apple`, `delivered:3`, `+ms` (time passes;
   * `+0` runs what is due on the next turn), `@ms` (until T0 + ms), `<ms` (the clock steps back,
   * timers run on), `=1@0,2@20` (what was sent so far must be that; `=none`: nothing yet). */
  const play = (script: string) => {
    for (const [i, step] of script.trim().split(/\s+/).entries()) {
      const [verb, arg = ''] = step.split(':');
      const ms = Number(step.slice(1));
      if (/^[+@<]/.test(step) && !Number.isFinite(ms)) throw new Error(`no time in ${step}`);
      if (step.startsWith('+')) jest.advanceTimersByTime(ms);
      else if (step.startsWith('<')) jest.setSystemTime(Date.now() - ms);
      else if (step.startsWith('@')) advanceTo(ms);
      // The step's place in the failure message says which check failed.
      else if (step.startsWith('=')) expect([i, sent() || 'none']).toEqual([i, step.slice(1)]);
      else if (verb === 'buy') {
        const reply = model.buy(arg as StockName);
        if (!reply.ok) throw new Error(`${step}: ${reply.error}`);
      } else if (verb === 'delivered') model.delivered(Number(arg));
      else if (verb === 'start' || verb === 'stop' || verb === 'dispose') model[verb]();
      else throw new Error(`no step ${step}`);
    }
    return updates;
  };
  return { model, updates, sent, play };
}

test('start ticks on the next turn, then every tickMs until stop; prices, seq and ts exact', () => {
  const { model, updates, play } = setup(stateOf({ seq: 41, ts: T0 - 60_000 }));
  expect(model.start()).toEqual({ ok: true, running: true, changed: true });
  // Not synchronously inside start(): the caller acknowledges first.
  play('=none @300');
  expect(model.start()).toEqual({ ok: true, running: true, changed: false });
  const apple = { name: 'Apple', price: grown(decayed(14.5)) };
  expect(model.buy('Apple')).toEqual({ ok: true, running: true, stock: apple });
  play('@3000');
  expect(model.stop()).toEqual({ ok: true, running: false, changed: true });
  expect(model.stop()).toEqual({ ok: true, running: false, changed: false });
  expect(jest.getTimerCount()).toBe(0);
  play('+10000 =42@0,43@300,44@1000,45@2000,46@3000');
  let expected = [...SEED];
  for (const update of updates) {
    expected = update.seq === 43 ? withBuy(expected, 'Apple') : decayAll(expected);
    // toEqual compares numbers with Object.is: exact to the bit.
    expect(update).toEqual({ stocks: expected, running: true, seq: update.seq, ts: update.ts });
  }
  expect(model.snapshot()).toEqual({ ...updates.at(-1), running: false });
});

// So toggling cannot speed the ticks up: a start waits an interval from the last tick (the table too).
test('a start paces its first tick by the last tick, not by a buy since', () => {
  setup().play('start @100 stop @500 buy:Apple @600 start @2000 =1@0,2@500,3@1000,4@2000');
});

test('skips missed ticks after a stall instead of bursting', () => {
  // The first tick's broadcast takes the clock to +3500; the jump counts as time advanced.
  setup(undefined, { stall: 3500 }).play('start +0 @4500 =1@0,2@4500');
});

test('a clock stepped back an hour holds neither ticks nor buys back for as long', () => {
  setup().play(
    'start +0 buy:Apple +0 <3600000 +2000 buy:Facebook +0 =1@0,2@0,3@-3598000,4@-3598000',
  );
});

test('after a clock stepped back, a lost notice delays a buy by DELIVERY_TIMEOUT_MS from now', () => {
  setup(undefined, { slowParent: true }).play(
    `buy:Apple +0 <3600000 buy:Facebook +${D} =1@0,2@${D - 3_600_000}`,
  );
});

test('a buy that would take a price past the largest number is refused and changes nothing', () => {
  // A price one buy (× 1.1) from overflowing to Infinity.
  const top = Number.MAX_VALUE / 1.05;
  const stocks = [{ name: 'Apple' as const, price: top }, ...SEED.slice(1)];
  const { model, play } = setup(stateOf({ stocks }));
  const before = model.snapshot();
  const error = 'Apple is at the highest price forkcast can show';
  expect(model.buy('Apple')).toEqual({ ok: false, error });
  play('+100 =none');
  expect(model.snapshot()).toEqual(before);
  expect(model.buy('Microsoft')).toMatchObject({ ok: true, stock: { price: grown(43) } });
  // The refused stock still ticks.
  play('start +0');
  expect(model.snapshot().stocks[0]!.price).toBe(decayed(top));
});

test("the update with the last seq (a tick's or its pending buys') stops the ticker; what would need another is refused or never sent", () => {
  const { model, play } = setup(stateOf({ seq: LAST_SEQ - 2, ts: T0 - 5 }));
  const updates = play(`start buy:Apple +${10 * TICK_MS}`);
  expect(updates.map(({ seq, running }) => [LAST_SEQ - seq, running])).toEqual([
    [1, true],
    [0, false],
  ]);
  const spent = { ok: false, error: 'the ticker has used up its sequence numbers' };
  expect([model.start(), model.buy('Apple')]).toEqual([spent, spent]);
  expect(model.snapshot()).toEqual(updates.at(-1));
  expect(jest.getTimerCount()).toBe(0);
  // Buys pending at a tick take the last seq themselves: the tick changes no price after them.
  const flushing = setup(stateOf({ seq: LAST_SEQ - 1, ts: T0 - TICK_MS }));
  const flushed = flushing.play(`start buy:Apple +0 +${10 * TICK_MS}`);
  expect(flushed.map(({ seq, running }) => [LAST_SEQ - seq, running])).toEqual([[0, false]]);
  expect(flushing.model.snapshot()).toEqual(flushed.at(-1));
  // Handed over at the last seq with buys to announce: no seq is left for them.
  const last = stateOf({ stocks: withBuy(SEED, 'Apple'), seq: LAST_SEQ, ts: T0 - 5 });
  expect(setup(last, { unannounced: true }).play(`+${10 * TICK_MS}`)).toEqual([]);
});

test('buys are conflated: out on the next turn, then at most once per 20 ms, also while stopped', () => {
  // After a quiet spell, the next buy goes out at once again.
  const updates = setup().play(`buy:Apple buy:Apple buy:Apple buy:Apple buy:Apple buy:Facebook =none
    +0 +4 buy:Apple +4 buy:Microsoft @10000 buy:Apple +0 =1@0,2@20,3@10000`);
  const first = withBuy(withBuy(SEED, 'Apple', 5), 'Facebook');
  const second = withBuy(withBuy(first, 'Apple'), 'Microsoft');
  const stopped = (stocks: unknown): unknown => expect.objectContaining({ stocks, running: false });
  expect(updates.slice(0, 2)).toEqual([stopped(first), stopped(second)]);
});

test('a tick flushes pending buys first as their own update, seq consecutive', () => {
  // Apple's is the leading edge, flushed at once; Facebook's trails, due at +1005, but the
  // tick at +1000 comes first. (What a buy's update holds is the first test's.)
  const updates = setup().play(
    'start @985 buy:Apple @995 buy:Facebook @1999 =1@0,2@985,3@1000,4@1000',
  );
  expect(updates[3]!.stocks).toEqual(decayAll(updates[2]!.stocks));
});

describe('flow control: a parent still broadcasting holds the next update back', () => {
  const slow = (tickMs = TICK_MS) => ({ slowParent: true, tickMs });

  test('delivered() soon after a flush still keeps the conflation window', () => {
    setup(undefined, slow()).play('buy:Apple +0 buy:Apple +5 delivered:1 +14 =1@0 +1 =1@0,2@20');
  });

  test('a tick that comes due during a broadcast waits for it, and takes pending buys', () => {
    // A broadcast 50 ms longer than the tick interval. Then the buy goes first, as its own update
    // (which goes first is the test above's), and the next tick is on the original grid.
    const [tick, late] = [D / 5, D / 5 + 50];
    setup(undefined, slow(tick)).play(
      `start +0 buy:Apple +${late} =1@0 delivered:1 +0 =1@0,2@${late},3@${late}
      delivered:3 @${2 * tick} =1@0,2@${late},3@${late},4@${2 * tick}`,
    );
  });

  test('a lost notice delays buys, and ticks from when they were due, by DELIVERY_TIMEOUT_MS', () => {
    // The buy's update moves the last update later; the tick's wait still counts from its due time.
    const tick = D / 2.5;
    setup(undefined, slow(tick)).play(`start +0 buy:Apple +${tick + D} =1@0,2@${D},3@${tick + D}`);
  });

  test('stop while a tick waits cancels it', () => {
    setup(undefined, slow(D / 5)).play(`start +${D / 5} stop delivered:1 +10000 =1@0`);
  });

  test('buys after an undelivered update wait for delivered() and go out as one; stale and future notices are harmless', () => {
    // 99 was beyond anything sent, so seq 11 is still unreported: later buys wait.
    const updates = setup(stateOf({ seq: 10, ts: T0 }), slow()).play(
      `delivered:99 delivered:3 buy:Apple +0 buy:Facebook +100 buy:Facebook +100
      buy:Facebook +100 buy:Facebook +100 =11@0 delivered:11 +0 =11@0,12@400`,
    );
    expect(updates[1]!.stocks).toEqual(withBuy(withBuy(SEED, 'Apple'), 'Facebook', 4));
  });
});

// An interval after the last update, an interval from now at most; alike whether the state is
// started or handed over running.
test.each<[string, number, Partial<UpdatePayload>]>([
  ['updated 400 ms ago', TICK_MS - 400, { seq: 7, ts: T0 - 400 }],
  ['updated long ago', 0, { seq: 7, ts: T0 - 60_000 }],
  ['stamped by a clock ahead of ours', TICK_MS, { seq: 7, ts: T0 + 60_000 }],
  ['never updated (seq 0, a fresh seed)', 0, { seq: 0, ts: T0 }],
])('a state %s first ticks at +%d ms, then at the pace', (_, first, last) => {
  for (const running of [false, true]) {
    jest.setSystemTime(T0);
    const handed = stateOf({ ...last, running });
    const { model, sent } = setup(handed);
    expect(model.snapshot()).toEqual(handed);
    expect(model.start()).toEqual({ ok: true, running: true, changed: !running });
    advanceTo(first + TICK_MS);
    const seq = (last.seq ?? 0) + 1;
    expect(sent()).toBe(`${seq}@${first},${seq + 1}@${first + TICK_MS}`);
    model.dispose();
  }
});

test('a stopped state is broadcast, unchanged, on the next turn only if it holds unannounced buys', () => {
  const handed = stateOf({ stocks: withBuy(SEED, 'Apple'), seq: 7, ts: T0 - 5 });
  const quiet = setup(handed);
  const told = setup(handed, { unannounced: true });
  jest.advanceTimersByTime(10_000);
  expect(quiet.updates).toEqual([]);
  expect(told.updates).toEqual([{ ...handed, seq: 8, ts: T0 }]);
});

test('the state given, the snapshot and the stock a buy returns are copies', () => {
  const handed = stateOf({ ts: T0 - 5 });
  const { model } = setup(handed);
  handed.stocks[0]!.price = 1;
  const snapshot = model.snapshot();
  Object.assign(snapshot, { seq: 100, running: true }).stocks[1]!.price = 999;
  snapshot.stocks.push({ name: 'Apple', price: 1 });
  const bought = model.buy('Facebook');
  if (bought.ok) bought.stock.price = 1;
  expect(model.snapshot()).toEqual(stateOf({ ts: T0 - 5, stocks: withBuy(SEED, 'Facebook') }));
});

test('dispose cancels the tick and any pending buy flush', () => {
  const { play } = setup();
  play('start +0 buy:Apple dispose');
  expect(jest.getTimerCount()).toBe(0);
  play('+10000 =1@0');
});
