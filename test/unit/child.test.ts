/** What the ticker child answers to each parent message. Which messages are well formed is
 * validation.test.ts's; the model's timing is model.test.ts's. */
import type { UpdatePayload } from '../../protocol/events';
import { parseParentMessage, type ChildMessage, type ParentMessage } from '../../protocol/ipc';
import { createTickerChild } from '../../ticker/child';
import { decayAll, grown, SEED, stateOf, T0, withBuy } from '../helpers/prices';

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

function setup() {
  const sent: ChildMessage[] = [];
  const receive = createTickerChild((message) => sent.push(message), {
    now: Date.now,
    setTimeout,
    clearTimeout,
  });
  /** Typed, so a contract change fails to compile here. */
  const send = (message: ParentMessage) => receive(message);
  const init = (state: UpdatePayload = stateOf()) =>
    send({ type: 'init', state, tickMs: 1000, unannounced: false });
  /** What the child sent since the last call, once `ms` have passed. */
  const drain = (ms = 0) => {
    jest.advanceTimersByTime(ms);
    return sent.splice(0);
  };
  return { receive, send, init, drain };
}

const reply = (id: number, body: object) => ({ type: 'reply', id, reply: { ok: true, ...body } });
const update = (stocks: UpdatePayload['stocks'], running: boolean, seq: number, ts = T0) => ({
  type: 'update',
  update: { stocks, running, seq, ts },
});
const rejected = (raw: unknown) => {
  const parsed = parseParentMessage(raw);
  return { type: 'rejected', error: !parsed.ok && parsed.error };
};

test('before init: pings are answered, notices ignored, ops refused by id, malformed messages rejected with the reason; init answers ready, and a malformed message after it is still rejected, changing nothing', () => {
  const { receive, send, init, drain } = setup();
  receive(null);
  send({ type: 'ping', id: 7 });
  send({ type: 'delivered', seq: 3 });
  send({ type: 'start', id: 1 });
  send({ type: 'stop', id: 2 });
  send({ type: 'buy', id: 3, name: 'Apple' });
  const refused = { ok: false, error: 'ticker is not initialised yet' };
  expect(drain(10_000)).toEqual([
    rejected(null),
    { type: 'pong', id: 7 },
    ...[1, 2, 3].map((id) => ({ type: 'reply', id, reply: refused })),
  ]);
  const state = stateOf({ seq: 12, ts: T0 - 1 });
  init(state);
  send({ type: 'ping', id: 8 });
  const forced = { type: 'start', id: 4, force: true };
  receive(forced);
  expect(drain(10_000)).toEqual([
    { type: 'ready', state },
    { type: 'pong', id: 8 },
    rejected(forced),
  ]);
});

test("ops get the model's reply under their id, updates go out, delivered reaches the model; a second init replaces the model and its timers", () => {
  const { send, init, drain } = setup();
  init();
  drain();
  send({ type: 'buy', id: 9, name: 'Apple' });
  expect(drain()).toEqual([
    reply(9, { running: false, stock: { name: 'Apple', price: grown(14.5) } }),
    update(withBuy(SEED, 'Apple'), false, 1),
  ]);
  send({ type: 'buy', id: 10, name: 'Facebook' });
  expect(drain(500)).toEqual([
    reply(10, { running: false, stock: { name: 'Facebook', price: grown(37.75) } }),
  ]);
  send({ type: 'delivered', seq: 1 });
  expect(drain()).toEqual([
    update(withBuy(withBuy(SEED, 'Apple'), 'Facebook'), false, 2, T0 + 500),
  ]);
  send({ type: 'start', id: 11 });
  send({ type: 'stop', id: 12 });
  expect(drain(10_000)).toEqual([
    reply(11, { running: true, changed: true }),
    reply(12, { running: false, changed: true }),
  ]);
  // Re-initialised while running: the old model's ticks never come, the new one's do.
  send({ type: 'start', id: 13 });
  drain();
  const handed = stateOf({ seq: 50, ts: T0 });
  init(handed);
  expect(drain(10_000)).toEqual([{ type: 'ready', state: handed }]);
  send({ type: 'start', id: 14 });
  expect(drain()).toEqual([
    reply(14, { running: true, changed: true }),
    update(decayAll(SEED), true, 51, T0 + 20_500),
  ]);
});
