/**
 * Every check on input from outside a process, once: a socket's arguments, the ticker state
 * (the one schema behind IPC, the state file, Redis and the adapter), and each message kind.
 */
import type { Stock } from '../../protocol/events';
import { parseForwardedOp, parseForwardedReply, parseStoredState } from '../../protocol/cluster';
import { parseChildMessage, parseParentMessage } from '../../protocol/ipc';
import {
  parse,
  parseBuyArgs,
  parseNoArgs,
  parseStatusPayload,
  parseUpdatePayload,
  savedStateSchema,
  updateSchema,
  type Parsed,
} from '../../protocol/validation';
import { SEED, stateOf } from '../helpers/prices';

/** The error of a failed parse; fails the test if it succeeded. */
function errorOf<T>(result: Parsed<T>): string {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result.error;
}

function priced(index: number, price: unknown): Stock[] {
  return SEED.map((stock, i) => (i === index ? { ...stock, price } : { ...stock })) as Stock[];
}

const ONE_ARGUMENT = /^buy takes exactly one argument: a stock name$/;
const NOT_A_STRING = /^stock name must be a string$/;
const TOO_LONG = /^stock name longer than 64 characters$/;
const LIST = 'Apple, Microsoft, Facebook';
const unknown = (name: string) => `unknown stock ${JSON.stringify(name)}; expected one of ${LIST}`;

describe('socket arguments', () => {
  test('buy takes one stock name; start and stop take nothing', () => {
    for (const name of ['Apple', 'Microsoft', 'Facebook'])
      expect(parseBuyArgs([name])).toEqual({ ok: true, value: name });
    expect(parseNoArgs('start', [])).toEqual({ ok: true, value: [] });
  });

  test.each<[unknown[], RegExp | string]>([
    [[], ONE_ARGUMENT],
    [['Apple', 'Apple'], ONE_ARGUMENT],
    [Array.from({ length: 1000 }, () => 'Apple'), ONE_ARGUMENT],
    [[null], NOT_A_STRING],
    [[undefined], NOT_A_STRING],
    [[42], NOT_A_STRING],
    [[{ name: 'Apple' }], NOT_A_STRING],
    [[['Apple']], NOT_A_STRING],
    // Names a lookup on a plain object would find.
    ...['Apple ', 'apple', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty'].map(
      (name): [unknown[], string] => [[name], unknown(name)],
    ),
    // A bad name is echoed, but only a short prefix of it.
    [['y'.repeat(64)], `unknown stock "${'y'.repeat(36)}...; expected one of ${LIST}`],
    [['x'.repeat(65)], TOO_LONG],
    [['x'.repeat(1 << 20)], TOO_LONG],
  ])('buy refuses %j', (args, error) => {
    expect(errorOf(parseBuyArgs(args))).toMatch(error);
  });

  test.each([[['now']], [[null]], [[undefined]], [[1, 2]]])('start and stop refuse %j', (args) => {
    expect(errorOf(parseNoArgs('start', args))).toBe('start takes no arguments');
    expect(errorOf(parseNoArgs('stop', args))).toBe('stop takes no arguments');
  });
});

describe('the ticker state', () => {
  const good = stateOf({ running: true, seq: 5 });
  const [apple, microsoft, facebook] = SEED as [Stock, Stock, Stock];

  test.each<[string, unknown, string]>([
    ['an infinite price', { ...good, stocks: priced(0, Infinity) }, 'stocks.0.price: '],
    ['a NaN price', { ...good, stocks: priced(1, Number.NaN) }, 'stocks.1.price: '],
    ['a zero price', { ...good, stocks: priced(2, 0) }, 'stocks.2.price: '],
    ['a negative price', { ...good, stocks: priced(1, -1) }, 'stocks.1.price: '],
    ['a null price', { ...good, stocks: priced(0, null) }, 'stocks.0.price: '],
    ['a price as a string', { ...good, stocks: priced(0, '14.5') }, 'stocks.0.price: '],
    ['a stock missing', { ...good, stocks: [apple, microsoft] }, 'stocks: '],
    [
      'an unknown stock',
      { ...good, stocks: [{ name: 'IBM', price: 1 }, microsoft, facebook] },
      'stocks.0.name: ',
    ],
    [
      'an extra key in a stock',
      { ...good, stocks: [{ ...apple, currency: 'USD' }, microsoft, facebook] },
      'stocks.0: Unrecognized key: "currency"',
    ],
    [
      'the stocks out of order',
      { ...good, stocks: [facebook, microsoft, apple] },
      'stocks: stocks must be Apple, Microsoft, Facebook, in that order',
    ],
    ['a stock twice', { ...good, stocks: [apple, apple, facebook] }, 'stocks: stocks must be'],
    ['a negative seq', { ...good, seq: -1 }, 'seq: '],
    ['a fractional seq', { ...good, seq: 1.5 }, 'seq: '],
    ['no ts', { ...good, ts: undefined }, 'ts: '],
    ['no running', { ...good, running: undefined }, 'running: '],
    ['an extra key', { ...good, leader: 'node-1' }, 'Unrecognized key: "leader"'],
    ['an array', [good], ''],
    ['null', null, ''],
  ])('with %s is refused, naming what is wrong', (_, state, problem) => {
    expect(errorOf(parse(updateSchema, 'update', state))).toContain(`bad update: ${problem}`);
    expect(errorOf(parse(savedStateSchema, 'saved', state))).toContain(`bad saved: ${problem}`);
  });

  test('a saved state keeps room for seq to grow, and is announced unless marked', () => {
    const LAST_SEQ = Number.MAX_SAFE_INTEGER - 2; // seq + 1 and seq + 2 are still exact
    expect(parse(savedStateSchema, 'saved', { ...good, seq: LAST_SEQ })).toEqual({
      ok: true,
      value: { ...good, seq: LAST_SEQ, unannounced: false },
    });
    for (const seq of [LAST_SEQ + 1, LAST_SEQ + 2])
      expect(errorOf(parse(savedStateSchema, 'saved', { ...good, seq }))).toBe(
        'bad saved: seq: seq is too close to 2^53 to go on counting',
      );
    expect(parse(updateSchema, 'update', { ...good, seq: LAST_SEQ + 2 }).ok).toBe(true);
    const marked = { ...good, unannounced: true };
    expect(parse(savedStateSchema, 'saved', marked)).toEqual({ ok: true, value: marked });
    expect(errorOf(parse(savedStateSchema, 'saved', { ...good, unannounced: 'yes' }))).toMatch(
      /^bad saved: unannounced: /,
    );
  });
});

describe('IPC messages', () => {
  const state = stateOf({ running: true, seq: 5 });

  test('each kind from the parent and from the child is accepted as sent', () => {
    for (const message of [
      { type: 'init', state, tickMs: 10, unannounced: true },
      { type: 'start', id: 0 },
      { type: 'stop', id: 7 },
      { type: 'buy', id: 8, name: 'Facebook' },
      { type: 'ping', id: 9 },
      { type: 'delivered', seq: 4 },
    ])
      expect(parseParentMessage(message)).toEqual({ ok: true, value: message });
    for (const message of [
      { type: 'ready', state },
      { type: 'update', update: state },
      { type: 'reply', id: 1, reply: { ok: true, running: true, changed: false } },
      {
        type: 'reply',
        id: 2,
        reply: { ok: true, running: false, stock: { name: 'Apple', price: 15.95 } },
      },
      { type: 'reply', id: 3, reply: { ok: false, error: 'nope' } },
      { type: 'rejected', error: 'bad message from parent: x' },
      { type: 'pong', id: 4 },
    ])
      expect(parseChildMessage(message)).toEqual({ ok: true, value: message });
  });

  test.each<[unknown, RegExp]>([
    [null, /expected object/],
    [42, /expected object/],
    [{ type: 'sell', id: 1 }, /^type: /],
    [{ type: 'start' }, /^id: /],
    [{ type: 'start', id: -1 }, /^id: /],
    [{ type: 'start', id: 0.5 }, /^id: /],
    [{ type: 'start', id: '1' }, /^id: /],
    [{ type: 'stop', id: 1, force: true }, /"force"/],
    [{ type: 'buy', id: 1 }, /^name: /],
    [{ type: 'buy', id: 1, name: 'apple' }, /^name: unknown stock "apple"/],
    [{ type: 'buy', id: 1, name: 'x'.repeat(1 << 20) }, /^name: stock name longer than 64/],
    [{ type: 'init', state, tickMs: 9, unannounced: false }, /^tickMs: /],
    [{ type: 'init', state, tickMs: 1.5, unannounced: false }, /^tickMs: /],
    [{ type: 'init', state, unannounced: false }, /^tickMs: /],
    [
      { type: 'init', state: { ...state, seq: -1 }, tickMs: 10, unannounced: false },
      /^state\.seq: /,
    ],
  ])('from the parent, %j is refused, briefly', (message, error) => {
    const text = errorOf(parseParentMessage(message));
    expect(text.replace(/^bad message from parent: /, '')).toMatch(error);
    expect(text.length).toBeLessThan(200);
  });

  test.each<[unknown, RegExp]>([
    [undefined, /expected object/],
    [{ type: 'tick' }, /^type: /],
    [
      { type: 'update', update: { ...state, stocks: priced(0, Infinity) } },
      /^update\.stocks\.0\.price: /,
    ],
    [{ type: 'ready' }, /^state: /],
    [{ type: 'reply', reply: { ok: false, error: 'x' } }, /^id: /],
    [{ type: 'reply', id: 1, reply: { ok: true } }, /^reply: /],
    [
      { type: 'reply', id: 1, reply: { ok: true, running: true, changed: true, extra: 1 } },
      /^reply: /,
    ],
  ])('from the child, %j is refused', (message, error) => {
    expect(errorOf(parseChildMessage(message)).replace(/^bad message from ticker: /, '')).toMatch(
      error,
    );
  });
});

describe('cluster messages (from Redis and other nodes)', () => {
  const stored = { ...stateOf({ running: true, seq: 12 }), unannounced: false, epoch: 3 };

  test('a stored state round-trips', () => {
    expect(parseStoredState(JSON.stringify(stored))).toEqual({ ok: true, value: stored });
  });

  test.each<[string, string, RegExp]>([
    ['not JSON', '{"stocks":', /^bad stored state: not JSON$/],
    ['no epoch', JSON.stringify({ ...stored, epoch: undefined }), /^bad stored state: epoch: /],
    ['epoch 0', JSON.stringify({ ...stored, epoch: 0 }), /^bad stored state: epoch: /],
    [
      'a price of null',
      JSON.stringify({ ...stored, stocks: [{ name: 'Apple', price: null }] }),
      /^bad stored state: stocks/,
    ],
    ['an extra key', JSON.stringify({ ...stored, leader: 'me' }), /^bad stored state: /],
  ])('a stored state that is %s is refused', (_, text, error) => {
    expect(errorOf(parseStoredState(text))).toMatch(error);
  });

  test.each([{ type: 'start' }, { type: 'stop' }, { type: 'buy', name: 'Facebook' }])(
    'a forwarded op %j is accepted',
    (op) => {
      expect(parseForwardedOp(op)).toEqual({ ok: true, value: op });
    },
  );

  test.each<[string, unknown, RegExp]>([
    ['an unknown stock', { type: 'buy', name: 'Tesla' }, /^bad forwarded op: name: unknown stock/],
    ['an init', { type: 'init' }, /^bad forwarded op: /],
    ['an extra key', { type: 'start', id: 1 }, /^bad forwarded op: /],
    ['no op at all', 'start', /^bad forwarded op: /],
  ])('a forwarded op with %s is refused', (_, op, error) => {
    expect(errorOf(parseForwardedOp(op))).toMatch(error);
  });

  test('replies: every op reply shape, null from a node that does not lead, and nothing else', () => {
    const replies = [
      { ok: true, running: true, changed: false },
      { ok: true, running: false, stock: { name: 'Apple', price: 15.95 } },
      { ok: false, error: 'no' },
      null,
    ];
    for (const reply of replies)
      expect(parseForwardedReply(reply)).toEqual({ ok: true, value: reply });
    expect(errorOf(parseForwardedReply({ ok: true }))).toMatch(/^bad op reply: /);
    expect(errorOf(parseForwardedReply(undefined))).toMatch(/^bad op reply: /);
  });

  test('broadcast payloads seen through the adapter', () => {
    const update = stateOf({ seq: 4 });
    expect(parseUpdatePayload(update)).toEqual({ ok: true, value: update });
    expect(errorOf(parseUpdatePayload({ ...update, seq: -1 }))).toMatch(/^bad update: seq/);
    expect(parseStatusPayload({ message: 'Stopped', running: false })).toEqual({
      ok: true,
      value: { message: 'Stopped', running: false },
    });
    expect(errorOf(parseStatusPayload({ message: 'Stopped' }))).toMatch(/^bad status: running/);
  });
});
