import type { UpdatePayload } from '../../protocol/events';
import type { ChildMessage, ParentMessage } from '../../protocol/ipc';
import { createTickerChild, type TickerChild } from '../../ticker/child';
import { FakeTimers } from '../helpers/fake-timers';
import { decayAll, grown, SEED, stateOf, withBuy } from '../helpers/prices';

const T0 = 1_700_000_000_000;
const TICK_MS = 1000;

interface Harness {
  child: TickerChild;
  timers: FakeTimers;
  sent: ChildMessage[];
  /** Feeds a well-formed message (typed, so a contract change fails to compile here). */
  send: (message: ParentMessage) => void;
}

function setup(): Harness {
  const timers = new FakeTimers(T0);
  const sent: ChildMessage[] = [];
  const child = createTickerChild((message) => sent.push(message), timers);
  return { child, timers, sent, send: (message) => child.receive(message) };
}

function initialised(state: UpdatePayload = stateOf()): Harness {
  const harness = setup();
  harness.send({ type: 'init', state, tickMs: TICK_MS, unannounced: false });
  harness.sent.length = 0;
  return harness;
}

describe('createTickerChild', () => {
  test('init answers ready with the state it was handed', () => {
    const { send, sent, timers } = setup();
    const state = stateOf({ seq: 12, ts: T0 - 1 });
    send({ type: 'init', state, tickMs: TICK_MS, unannounced: false });
    expect(sent).toEqual([{ type: 'ready', state }]);
    timers.advance(10_000);
    expect(sent).toHaveLength(1);
  });

  test('ops before init are answered ok:false with their id', () => {
    const { send, sent, timers } = setup();
    send({ type: 'start', id: 1 });
    send({ type: 'stop', id: 2 });
    send({ type: 'buy', id: 3, name: 'Apple' });
    const error = 'ticker is not initialised yet';
    expect(sent).toEqual([
      { type: 'reply', id: 1, reply: { ok: false, error } },
      { type: 'reply', id: 2, reply: { ok: false, error } },
      { type: 'reply', id: 3, reply: { ok: false, error } },
    ]);
    timers.advance(10_000);
    expect(sent).toHaveLength(3);
  });

  test('start, stop and buy replies carry the op id', () => {
    const { send, sent, timers } = initialised();
    send({ type: 'start', id: 10 });
    send({ type: 'start', id: 11 });
    expect(sent).toEqual([
      { type: 'reply', id: 10, reply: { ok: true, running: true, changed: true } },
      { type: 'reply', id: 11, reply: { ok: true, running: true, changed: false } },
    ]);
    timers.advance(0);
    expect(sent[2]).toEqual({
      type: 'update',
      update: { stocks: decayAll(SEED), running: true, seq: 1, ts: T0 },
    });
    // The parent reports the tick broadcast, so the buy's update is not held back.
    send({ type: 'delivered', seq: 1 });

    send({ type: 'buy', id: 12, name: 'Facebook' });
    expect(sent[3]).toEqual({
      type: 'reply',
      id: 12,
      reply: {
        ok: true,
        running: true,
        stock: { name: 'Facebook', price: grown(37.75 - 37.75 / 1800) },
      },
    });
    timers.advance(0);
    expect(sent[4]).toEqual({
      type: 'update',
      update: { stocks: withBuy(decayAll(SEED), 'Facebook'), running: true, seq: 2, ts: T0 },
    });

    send({ type: 'stop', id: 13 });
    send({ type: 'stop', id: 14 });
    expect(sent.slice(5)).toEqual([
      { type: 'reply', id: 13, reply: { ok: true, running: false, changed: true } },
      { type: 'reply', id: 14, reply: { ok: true, running: false, changed: false } },
    ]);
    timers.advance(10_000);
    expect(sent).toHaveLength(7);
  });

  test('a ping is answered with a pong of its id, before and after init, changing nothing', () => {
    const { send, sent } = setup();
    send({ type: 'ping', id: 7 });
    expect(sent).toEqual([{ type: 'pong', id: 7 }]);
    const state = stateOf({ seq: 3 });
    send({ type: 'init', state, tickMs: TICK_MS, unannounced: false });
    send({ type: 'ping', id: 8 });
    expect(sent.slice(1)).toEqual([
      { type: 'ready', state },
      { type: 'pong', id: 8 },
    ]);
  });

  test('delivered is a notice: never answered, before or after init', () => {
    const { child, timers, sent } = setup();
    child.receive({ type: 'delivered', seq: 3 });
    expect(sent).toEqual([]);
    child.receive({ type: 'init', state: stateOf(), tickMs: TICK_MS, unannounced: false });
    sent.length = 0;
    child.receive({ type: 'delivered', seq: 0 });
    timers.advance(10_000);
    expect(sent).toEqual([]);
  });

  test('buys wait for the parent to deliver the previous update, then go out as one', () => {
    const { send, sent, timers } = initialised();
    send({ type: 'buy', id: 1, name: 'Apple' });
    timers.advance(0);
    send({ type: 'buy', id: 2, name: 'Apple' });
    send({ type: 'buy', id: 3, name: 'Microsoft' });
    timers.advance(500);
    const updates = () => sent.filter((message) => message.type === 'update');
    // Update 1 is still being broadcast: the later buys are acked but held back.
    expect(updates()).toHaveLength(1);
    send({ type: 'delivered', seq: 1 });
    timers.advance(0);
    expect(updates()).toEqual([
      {
        type: 'update',
        update: { stocks: withBuy(SEED, 'Apple'), running: false, seq: 1, ts: T0 },
      },
      {
        type: 'update',
        update: {
          stocks: withBuy(withBuy(SEED, 'Apple', 2), 'Microsoft'),
          running: false,
          seq: 2,
          ts: T0 + 500,
        },
      },
    ]);
  });

  test('a buy while stopped replies running:false and is still broadcast', () => {
    const { send, sent, timers } = initialised();
    send({ type: 'buy', id: 1, name: 'Apple' });
    timers.advance(0);
    expect(sent).toEqual([
      {
        type: 'reply',
        id: 1,
        reply: { ok: true, running: false, stock: { name: 'Apple', price: grown(14.5) } },
      },
      {
        type: 'update',
        update: { stocks: withBuy(SEED, 'Apple'), running: false, seq: 1, ts: T0 },
      },
    ]);
  });

  test('a second init replaces the model and its timers', () => {
    const { send, sent, timers } = initialised();
    send({ type: 'start', id: 1 });
    timers.advance(0);
    const handed = stateOf({ seq: 50, ts: T0 });
    send({ type: 'init', state: handed, tickMs: TICK_MS, unannounced: false });
    expect(sent.at(-1)).toEqual({ type: 'ready', state: handed });
    sent.length = 0;
    timers.advance(10_000);
    expect(sent).toEqual([]);
    send({ type: 'start', id: 2 });
    expect(sent).toEqual([
      { type: 'reply', id: 2, reply: { ok: true, running: true, changed: true } },
    ]);
  });

  test('dispose stops the ticks', () => {
    const { send, sent, timers, child } = initialised();
    send({ type: 'start', id: 1 });
    timers.advance(0);
    child.dispose();
    timers.advance(10_000);
    expect(sent.filter((message) => message.type === 'update')).toHaveLength(1);
    expect(timers.pending).toBe(0);
  });

  describe('garbage from the parent', () => {
    const huge = 'x'.repeat(1 << 20);
    const garbage: [string, unknown][] = [
      ['null', null],
      ['undefined', undefined],
      ['a number', 42],
      ['a string', 'x'],
      ['an array', [{ type: 'start', id: 1 }]],
      ['an empty object', {}],
      ['an unknown type', { type: 'nope' }],
      ['a lower-case stock', { type: 'buy', id: 1, name: 'apple' }],
      ['__proto__ as a stock', { type: 'buy', id: 1, name: '__proto__' }],
      ['constructor as a stock', { type: 'buy', id: 1, name: 'constructor' }],
      ['a 1 MiB stock name', { type: 'buy', id: 1, name: huge }],
      ['a buy without a name', { type: 'buy', id: 1 }],
      ['extra keys', { type: 'start', id: 1, extra: true }],
      ['a start without id', { type: 'start' }],
      ['a negative id', { type: 'stop', id: -1 }],
      ['a fractional id', { type: 'stop', id: 1.5 }],
      ['a string id', { type: 'start', id: '1' }],
      ['an init with tickMs 0', { type: 'init', state: stateOf(), tickMs: 0, unannounced: false }],
      ['an init without tickMs', { type: 'init', state: stateOf(), unannounced: false }],
      [
        'an init with an infinite price',
        {
          type: 'init',
          state: stateOf({ stocks: withPrice(Infinity) }),
          tickMs: TICK_MS,
          unannounced: false,
        },
      ],
      [
        'an init with NaN',
        {
          type: 'init',
          state: stateOf({ stocks: withPrice(Number.NaN) }),
          tickMs: TICK_MS,
          unannounced: false,
        },
      ],
      [
        'an init with stocks out of order',
        {
          type: 'init',
          state: stateOf({ stocks: [...SEED].reverse() }),
          tickMs: TICK_MS,
          unannounced: false,
        },
      ],
      [
        'an init with a negative seq',
        { type: 'init', state: stateOf({ seq: -1 }), tickMs: TICK_MS, unannounced: false },
      ],
    ];

    test.each(garbage)('%s before init is rejected without a throw', (_label, raw) => {
      const { child, sent, timers } = setup();
      expect(() => child.receive(raw)).not.toThrow();
      expect(sent).toEqual([
        { type: 'rejected', error: expect.stringMatching(/^bad message from parent: /) },
      ]);
      timers.advance(10_000);
      expect(sent).toHaveLength(1);
    });

    test.each(garbage)('%s after init is rejected and changes nothing', (_label, raw) => {
      const { child, send, sent, timers } = initialised(stateOf({ seq: 3 }));
      expect(() => child.receive(raw)).not.toThrow();
      expect(sent).toEqual([
        { type: 'rejected', error: expect.stringMatching(/^bad message from parent: /) },
      ]);
      expect(JSON.stringify(sent[0]).length).toBeLessThan(300);
      timers.advance(10_000);
      expect(sent).toHaveLength(1);

      // Still stopped with the same prices and seq: a start is a real change and the first
      // tick decays the untouched seed prices.
      sent.length = 0;
      send({ type: 'start', id: 99 });
      timers.advance(0);
      expect(sent).toEqual([
        { type: 'reply', id: 99, reply: { ok: true, running: true, changed: true } },
        {
          type: 'update',
          update: { stocks: decayAll(SEED), running: true, seq: 4, ts: T0 + 10_000 },
        },
      ]);
    });

    test('the rejection says what was wrong', () => {
      const { child, sent } = initialised();
      child.receive({ type: 'buy', id: 1, name: 'apple' });
      child.receive({ type: 'start' });
      child.receive({ type: 'start', id: 1, extra: true });
      child.receive({ type: 'buy', id: 1, name: huge });
      const errors = sent.map((message) => (message.type === 'rejected' ? message.error : ''));
      expect(errors[0]).toMatch(/unknown stock "apple"/);
      expect(errors[1]).toMatch(/^bad message from parent: id: /);
      expect(errors[2]).toMatch(/"extra"/);
      expect(errors[3]).toMatch(/longer than 64/);
      expect(errors[3]?.length).toBeLessThan(200);
    });
  });
});

function withPrice(price: number): UpdatePayload['stocks'] {
  return SEED.map((stock, i) => ({ ...stock, price: i === 0 ? price : stock.price }));
}
