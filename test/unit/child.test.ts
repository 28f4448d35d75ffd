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

function setup() {
  const timers = new FakeTimers(T0);
  const sent: ChildMessage[] = [];
  const receive = createTickerChild((message) => sent.push(message), timers);
  /** Feeds a well-formed message (typed, so a contract change fails to compile here). */
  const send = (message: ParentMessage) => receive(message);
  const init = (state: UpdatePayload = stateOf()) =>
    send({ type: 'init', state, tickMs: 1000, unannounced: false });
  /** What the child sent since the last call, once due timers have run. */
  const drain = (ms = 0) => {
    timers.advance(ms);
    return sent.splice(0);
  };
  return { receive, send, init, drain };
}

const reply = (id: number, body: object) => ({ type: 'reply', id, reply: { ok: true, ...body } });
const update = (stocks: UpdatePayload['stocks'], running: boolean, seq: number, ts = T0) => ({
  type: 'update',
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
  // A buy while stopped says so, and is still broadcast.
  send({ type: 'buy', id: 9, name: 'Apple' });
  expect(drain().slice(1)).toEqual([
    reply(9, { running: false, stock: { name: 'Apple', price: grown(14.5) } }),
    update(withBuy(SEED, 'Apple'), false, 1),
  ]);
  send({ type: 'delivered', seq: 1 });
  send({ type: 'start', id: 10 });
  send({ type: 'start', id: 11 });
  const ticked = decayAll(withBuy(SEED, 'Apple'));
  expect(drain()).toEqual([
    reply(10, { running: true, changed: true }),
    reply(11, { running: true, changed: false }),
    update(ticked, true, 2),
  ]);
  // Without `delivered` for the tick, the next buy's update is held back.
  send({ type: 'buy', id: 12, name: 'Facebook' });
  expect(drain(500).map((message) => message.type)).toEqual(['reply']);
  send({ type: 'delivered', seq: 2 });
  expect(drain()).toEqual([update(withBuy(ticked, 'Facebook'), true, 3, T0 + 500)]);
  send({ type: 'stop', id: 13 });
  send({ type: 'stop', id: 14 });
  expect(drain(10_000)).toEqual([
    reply(13, { running: false, changed: true }),
    reply(14, { running: false, changed: false }),
  ]);
});

test('a second init replaces the model and its timers', () => {
  const { send, init, drain } = setup();
  init();
  send({ type: 'start', id: 1 });
  drain();
  const handed = stateOf({ seq: 50, ts: T0 });
  init(handed);
  expect(drain(10_000)).toEqual([{ type: 'ready', state: handed }]);
  send({ type: 'start', id: 2 });
  expect(drain()).toEqual([
    reply(2, { running: true, changed: true }),
    update(decayAll(SEED), true, 51, T0 + 10_000),
  ]);
});

test.each<[string, unknown]>([
  ['null', null],
  ['an unknown type', { type: 'nope' }],
  ['a 1 MiB stock name', { type: 'buy', id: 1, name: 'x'.repeat(1 << 20) }],
  ['an init with tickMs 0', { type: 'init', state: stateOf(), tickMs: 0, unannounced: false }],
])('%s is rejected briefly, before or after init, and changes nothing', (_, raw) => {
  const { receive, send, init, drain } = setup();
  const rejected = [
    { type: 'rejected', error: expect.stringMatching(/^bad message from parent: /) },
  ];
  receive(raw);
  expect(drain(10_000)).toEqual(rejected);
  init(stateOf({ seq: 3 }));
  drain();
  receive(raw);
  const sent = drain(10_000);
  expect(sent).toEqual(rejected);
  expect(JSON.stringify(sent).length).toBeLessThan(300);
  // Still stopped with the same prices and seq.
  send({ type: 'start', id: 99 });
  expect(drain()).toEqual([
    reply(99, { running: true, changed: true }),
    update(decayAll(SEED), true, 4, T0 + 20_000),
  ]);
});
