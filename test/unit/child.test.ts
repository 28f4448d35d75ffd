/** What the ticker child answers to each parent message. Which messages are well formed is
 * validation.test.ts's; the model's timing is model.test.ts's. */
import type { UpdatePayload } from '../../protocol/events';
import { parseParentMessage, type ChildMessage, type ParentMessage } from '../../protocol/ipc';
import { createTickerChild } from '../../ticker/child';
import { decayAll, grown, SEED, stateOf, T0, withBuy } from '../helpers/prices';

beforeEach(() => jest.useFakeTimers({ now: T0 }));
afterEach(() => jest.useRealTimers());

const reply = (id: number, body: object) => ({ type: 'reply', id, reply: { ok: true, ...body } });
const update = (stocks: UpdatePayload['stocks'], running: boolean, seq: number, ms: number) => ({
  type: 'update',
  update: { stocks, running, seq, ts: T0 + ms },
});
const rejected = (raw: unknown) => {
  const parsed = parseParentMessage(raw);
  return { type: 'rejected', error: !parsed.ok && parsed.error };
};

test("before init: pings are answered, notices ignored, ops refused by id; init answers ready; a malformed message is rejected with the reason, changing nothing; then ops get the model's reply under their id, updates go out, delivered reaches the model; a second init replaces the model and its timers", () => {
  const sent: ChildMessage[] = [];
  const timers = { now: Date.now, setTimeout, clearTimeout };
  const receive = createTickerChild((message) => sent.push(message), timers);
  /** Typed, so a contract change fails to compile here. */
  const send = (message: ParentMessage) => receive(message);
  /** What the child sent since the last call, once `ms` have passed. */
  const drain = (ms = 0) => {
    jest.advanceTimersByTime(ms);
    return sent.splice(0);
  };
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
  send({ type: 'init', state, tickMs: 1000, unannounced: false });
  const forced = { type: 'start', id: 4, force: true };
  receive(forced);
  expect(drain(10_000)).toEqual([{ type: 'ready', state }, rejected(forced)]);
  send({ type: 'buy', id: 9, name: 'Apple' });
  expect(drain()).toEqual([
    reply(9, { running: false, stock: { name: 'Apple', price: grown(14.5) } }),
    update(withBuy(SEED, 'Apple'), false, 13, 20_000),
  ]);
  send({ type: 'buy', id: 10, name: 'Facebook' });
  expect(drain(500)).toEqual([
    reply(10, { running: false, stock: { name: 'Facebook', price: grown(37.75) } }),
  ]);
  send({ type: 'delivered', seq: 13 });
  expect(drain()).toEqual([update(withBuy(withBuy(SEED, 'Apple'), 'Facebook'), false, 14, 20_500)]);
  // Re-initialised while running: the old model's ticks never come, the new one's do.
  send({ type: 'start', id: 11 });
  const handed = stateOf({ seq: 50, ts: T0 });
  send({ type: 'init', state: handed, tickMs: 1000, unannounced: false });
  expect(drain(10_000)).toEqual([
    reply(11, { running: true, changed: true }),
    { type: 'ready', state: handed },
  ]);
  send({ type: 'start', id: 12 });
  expect(drain()).toEqual([
    reply(12, { running: true, changed: true }),
    update(decayAll(SEED), true, 51, 30_500),
  ]);
  send({ type: 'stop', id: 13 });
  expect(drain()).toEqual([reply(13, { running: false, changed: true })]);
});
