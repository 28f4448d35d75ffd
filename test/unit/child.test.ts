/**
 * What the ticker child answers to each parent message, on a fake clock. Which messages are
 * well formed is test/unit/validation.test.ts's; the model's timing is model.test.ts's.
 */
import type { UpdatePayload } from '../../protocol/events';
import type { ChildMessage, ParentMessage } from '../../protocol/ipc';
import { createTickerChild } from '../../ticker/child';
import { FakeTimers } from '../helpers/fake-timers';
import { decayAll, grown, SEED, stateOf, withBuy } from '../helpers/prices';

const T0 = 1_700_000_000_000;
const TICK_MS = 1000;

function setup() {
  const timers = new FakeTimers(T0);
  const sent: ChildMessage[] = [];
  const child = createTickerChild((message) => sent.push(message), timers);
  /** Feeds a well-formed message (typed, so a contract change fails to compile here). */
  const send = (message: ParentMessage) => child.receive(message);
  const init = (state: UpdatePayload = stateOf()) =>
    send({ type: 'init', state, tickMs: TICK_MS, unannounced: false });
  /** What the child sent since the last call, once due timers have run. */
  const drain = (ms = 0) => {
    timers.advance(ms);
    return sent.splice(0);
  };
  return { child, timers, send, init, drain };
}

const runReply = (id: number, running: boolean, changed: boolean): ChildMessage => ({
  type: 'reply',
  id,
  reply: { ok: true, running, changed },
});
const update = (stocks: UpdatePayload['stocks'], running: boolean, seq: number, ts = T0) => ({
  type: 'update' as const,
  update: { stocks, running, seq, ts },
});

test('before init: pings are answered, notices ignored, ops refused by id; init answers ready', () => {
  const { send, init, drain } = setup();
  send({ type: 'ping', id: 7 });
  send({ type: 'delivered', seq: 3 });
  send({ type: 'start', id: 1 });
  send({ type: 'stop', id: 2 });
  send({ type: 'buy', id: 3, name: 'Apple' });
  const refused = { ok: false, error: 'ticker is not initialised yet' };
  expect(drain(10_000)).toEqual([
    { type: 'pong', id: 7 },
    ...[1, 2, 3].map((id) => ({ type: 'reply', id, reply: refused })),
  ]);

  const state = stateOf({ seq: 12, ts: T0 - 1 });
  init(state);
  send({ type: 'ping', id: 8 });
  send({ type: 'delivered', seq: 0 });
  // Stopped: nothing but the answers, however long.
  expect(drain(10_000)).toEqual([
    { type: 'ready', state },
    { type: 'pong', id: 8 },
  ]);
});

test('start, stop and buy are answered by op id; ticks and buys go out as updates', () => {
  const { send, init, drain } = setup();
  init();
  drain();
  // A buy while stopped says so, and is still broadcast.
  send({ type: 'buy', id: 9, name: 'Apple' });
  const apple = { name: 'Apple', price: grown(14.5) };
  expect(drain()).toEqual([
    { type: 'reply', id: 9, reply: { ok: true, running: false, stock: apple } },
    update(withBuy(SEED, 'Apple'), false, 1),
  ]);
  send({ type: 'delivered', seq: 1 });

  send({ type: 'start', id: 10 });
  send({ type: 'start', id: 11 });
  const ticked = decayAll(withBuy(SEED, 'Apple'));
  expect(drain()).toEqual([
    runReply(10, true, true),
    runReply(11, true, false),
    update(ticked, true, 2),
  ]);
  // The parent reports the tick broadcast, so the buy's update is not held back.
  send({ type: 'delivered', seq: 2 });
  send({ type: 'buy', id: 12, name: 'Facebook' });
  const facebook = { name: 'Facebook', price: grown(ticked[2]!.price) };
  // Within the conflation window of the first buy's update.
  expect(drain(20)).toEqual([
    { type: 'reply', id: 12, reply: { ok: true, running: true, stock: facebook } },
    update(withBuy(ticked, 'Facebook'), true, 3, T0 + 20),
  ]);

  send({ type: 'stop', id: 13 });
  send({ type: 'stop', id: 14 });
  expect(drain(10_000)).toEqual([runReply(13, false, true), runReply(14, false, false)]);
});

test('buys wait for the parent to report the previous update delivered, then go out as one', () => {
  const { send, init, drain } = setup();
  init();
  send({ type: 'buy', id: 1, name: 'Apple' });
  drain();
  send({ type: 'buy', id: 2, name: 'Apple' });
  send({ type: 'buy', id: 3, name: 'Microsoft' });
  // Update 1 is still being broadcast: the later buys are acked but held back.
  expect(drain(500).map((message) => message.type)).toEqual(['reply', 'reply']);
  send({ type: 'delivered', seq: 1 });
  expect(drain()).toEqual([
    update(withBuy(withBuy(SEED, 'Apple', 2), 'Microsoft'), false, 2, T0 + 500),
  ]);
});

test('a second init replaces the model and its timers; dispose stops the ticks', () => {
  const { child, timers, send, init, drain } = setup();
  init();
  send({ type: 'start', id: 1 });
  drain();
  const handed = stateOf({ seq: 50, ts: T0 });
  init(handed);
  expect(drain(10_000)).toEqual([{ type: 'ready', state: handed }]);
  send({ type: 'start', id: 2 });
  expect(drain(0)).toEqual([
    runReply(2, true, true),
    update(decayAll(SEED), true, 51, T0 + 10_000),
  ]);
  child.dispose();
  expect(timers.pending).toBe(0);
  expect(drain(10_000)).toEqual([]);
});

describe('garbage from the parent', () => {
  const garbage: [string, unknown][] = [
    ['null', null],
    ['an unknown type', { type: 'nope' }],
    ['a 1 MiB stock name', { type: 'buy', id: 1, name: 'x'.repeat(1 << 20) }],
    ['an init with tickMs 0', { type: 'init', state: stateOf(), tickMs: 0, unannounced: false }],
  ];

  test.each(garbage)('%s is rejected, before or after init, and changes nothing', (_, raw) => {
    const { child, send, init, drain } = setup();
    const rejected = [
      { type: 'rejected', error: expect.stringMatching(/^bad message from parent: /) },
    ];
    expect(() => child.receive(raw)).not.toThrow();
    expect(drain(10_000)).toEqual(rejected);

    init(stateOf({ seq: 3 }));
    drain();
    expect(() => child.receive(raw)).not.toThrow();
    const [message] = drain(10_000);
    expect([message]).toEqual(rejected);
    expect(JSON.stringify(message).length).toBeLessThan(300);
    // Still stopped with the same prices and seq: a start is a real change, and the first
    // tick decays the untouched seed.
    send({ type: 'start', id: 99 });
    expect(drain()).toEqual([
      runReply(99, true, true),
      update(decayAll(SEED), true, 4, T0 + 20_000),
    ]);
  });
});
