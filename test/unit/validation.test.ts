import type { Stock } from '../../protocol/events';
import { parseForwardedOp, parseForwardedReply, parseStoredState } from '../../protocol/cluster';
import { parseChildMessage, parseParentMessage } from '../../protocol/ipc';
import {
  parseBuyArgs,
  parseNoArgs,
  parseStatusPayload,
  parseUpdatePayload,
  type Parsed,
} from '../../protocol/validation';
import { stateOf, SEED } from '../helpers/prices';

/** The error of a failed parse; fails the test if it succeeded. */
function errorOf<T>(result: Parsed<T>): string {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.value)}`);
  return result.error;
}

const UNKNOWN = /^unknown stock .*; expected one of Apple, Microsoft, Facebook$/;

describe('parseBuyArgs', () => {
  test.each(['Apple', 'Microsoft', 'Facebook'])('accepts [%j]', (name) => {
    expect(parseBuyArgs([name])).toEqual({ ok: true, value: name });
  });

  test.each<[string, unknown[], RegExp]>([
    ['no argument', [], /^buy takes exactly one argument: a stock name$/],
    ['two arguments', ['Apple', 'Apple'], /^buy takes exactly one argument: a stock name$/],
    ['ten arguments', Array.from({ length: 10 }, () => 'Apple'), /exactly one argument/],
    ['null', [null], /^stock name must be a string$/],
    ['undefined', [undefined], /^stock name must be a string$/],
    ['a number', [42], /^stock name must be a string$/],
    ['an object', [{ name: 'Apple' }], /^stock name must be a string$/],
    ['an array', [['Apple']], /^stock name must be a string$/],
    ['a trailing space', ['Apple '], /^unknown stock "Apple "; expected one of/],
    ['lower case', ['apple'], /^unknown stock "apple"; expected one of/],
    ['the empty string', [''], /^unknown stock ""; expected one of/],
    ['__proto__', ['__proto__'], /^unknown stock "__proto__"; expected one of/],
    ['constructor', ['constructor'], /^unknown stock "constructor"; expected one of/],
    ['toString', ['toString'], /^unknown stock "toString"; expected one of/],
    ['hasOwnProperty', ['hasOwnProperty'], /^unknown stock "hasOwnProperty"; expected one of/],
    ['65 characters', ['x'.repeat(65)], /^stock name longer than 64 characters$/],
    ['1 MiB', ['x'.repeat(1 << 20)], /^stock name longer than 64 characters$/],
  ])('rejects %s', (_label, args, message) => {
    expect(errorOf(parseBuyArgs(args))).toMatch(message);
  });

  test('every unknown-stock error lists the stocks', () => {
    expect(errorOf(parseBuyArgs(['IBM']))).toMatch(UNKNOWN);
  });

  test('echoes at most a short prefix of a long bad name', () => {
    const error = errorOf(parseBuyArgs(['y'.repeat(64)]));
    expect(error).toMatch(UNKNOWN);
    expect(error).toContain(`"${'y'.repeat(36)}...`);
    expect(error.length).toBeLessThan(200);
  });

  test('the error for a huge string is short', () => {
    expect(errorOf(parseBuyArgs(['x'.repeat(1 << 20)])).length).toBeLessThan(200);
    expect(errorOf(parseBuyArgs(Array.from({ length: 1000 }, () => 'x'))).length).toBeLessThan(200);
  });
});

describe('parseNoArgs', () => {
  test('accepts no arguments', () => {
    expect(parseNoArgs('start', [])).toEqual({ ok: true, value: [] });
  });

  test.each<[unknown[]]>([[['now']], [[null]], [[undefined]], [[1, 2]]])('rejects %j', (args) => {
    expect(parseNoArgs('start', args)).toEqual({ ok: false, error: 'start takes no arguments' });
    expect(parseNoArgs('stop', args)).toEqual({ ok: false, error: 'stop takes no arguments' });
  });
});

describe('parseParentMessage', () => {
  test.each<[unknown]>([
    [{ type: 'init', state: stateOf(), tickMs: 1000, unannounced: false }],
    [{ type: 'init', state: stateOf({ running: true, seq: 99 }), tickMs: 10, unannounced: false }],
    [{ type: 'start', id: 0 }],
    [{ type: 'stop', id: 7 }],
    [{ type: 'buy', id: 8, name: 'Facebook' }],
  ])('accepts %j', (message) => {
    expect(parseParentMessage(message)).toEqual({ ok: true, value: message });
  });

  test.each<[string, unknown, RegExp]>([
    ['null', null, /expected object/],
    ['a number', 42, /expected object/],
    ['an unknown type', { type: 'sell', id: 1 }, /^bad message from parent: type: /],
    ['a missing id', { type: 'start' }, /^bad message from parent: id: /],
    ['a negative id', { type: 'start', id: -1 }, /id: /],
    ['a non-integer id', { type: 'start', id: 0.5 }, /id: /],
    ['an extra key', { type: 'stop', id: 1, force: true }, /"force"/],
    ['an unknown stock', { type: 'buy', id: 1, name: 'apple' }, /name: unknown stock "apple"/],
    [
      'tickMs below 10',
      { type: 'init', state: stateOf(), tickMs: 9, unannounced: false },
      /tickMs: /,
    ],
    [
      'tickMs not an integer',
      { type: 'init', state: stateOf(), tickMs: 1.5, unannounced: false },
      /tickMs: /,
    ],
    [
      'an infinite price',
      {
        type: 'init',
        state: stateOf({ stocks: priced(0, Infinity) }),
        tickMs: 1000,
        unannounced: false,
      },
      /state\.stocks\.0\.price: /,
    ],
    [
      'a NaN price',
      {
        type: 'init',
        state: stateOf({ stocks: priced(1, Number.NaN) }),
        tickMs: 1000,
        unannounced: false,
      },
      /state\.stocks\.1\.price: /,
    ],
    [
      'a zero price',
      { type: 'init', state: stateOf({ stocks: priced(2, 0) }), tickMs: 1000, unannounced: false },
      /state\.stocks\.2\.price: /,
    ],
    [
      'stocks out of order',
      {
        type: 'init',
        state: stateOf({ stocks: [...SEED].reverse() }),
        tickMs: 1000,
        unannounced: false,
      },
      /stocks must be Apple, Microsoft, Facebook, in that order/,
    ],
    [
      'a missing stock',
      {
        type: 'init',
        state: stateOf({ stocks: SEED.slice(0, 2) }),
        tickMs: 1000,
        unannounced: false,
      },
      /state\.stocks: /,
    ],
    [
      'a negative seq',
      { type: 'init', state: stateOf({ seq: -1 }), tickMs: 1000, unannounced: false },
      /state\.seq: /,
    ],
    [
      'a fractional seq',
      { type: 'init', state: stateOf({ seq: 1.5 }), tickMs: 1000, unannounced: false },
      /state\.seq: /,
    ],
  ])('rejects %s', (_label, message, error) => {
    const text = errorOf(parseParentMessage(message));
    expect(text).toMatch(/^bad message from parent: /);
    expect(text).toMatch(error);
  });
});

describe('parseChildMessage', () => {
  const update = stateOf({ running: true, seq: 5 });

  test.each<[unknown]>([
    [{ type: 'ready', state: stateOf() }],
    [{ type: 'update', update }],
    [{ type: 'reply', id: 1, reply: { ok: true, running: true, changed: false } }],
    [
      {
        type: 'reply',
        id: 2,
        reply: { ok: true, running: false, stock: { name: 'Apple', price: 15.95 } },
      },
    ],
    [{ type: 'reply', id: 3, reply: { ok: false, error: 'nope' } }],
    [{ type: 'rejected', error: 'bad message from parent: x' }],
  ])('accepts %j', (message) => {
    expect(parseChildMessage(message)).toEqual({ ok: true, value: message });
  });

  test.each<[string, unknown, RegExp]>([
    ['undefined', undefined, /expected object/],
    ['an unknown type', { type: 'tick' }, /^bad message from ticker: type: /],
    [
      'an infinite price',
      { type: 'update', update: { ...update, stocks: priced(0, Infinity) } },
      /update\.stocks\.0\.price: /,
    ],
    [
      'a NaN price',
      { type: 'update', update: { ...update, stocks: priced(2, Number.NaN) } },
      /update\.stocks\.2\.price: /,
    ],
    [
      'a negative price',
      { type: 'update', update: { ...update, stocks: priced(1, -1) } },
      /update\.stocks\.1\.price: /,
    ],
    ['a negative seq', { type: 'update', update: { ...update, seq: -1 } }, /update\.seq: /],
    [
      'stocks in the wrong order',
      { type: 'update', update: { ...update, stocks: [SEED[1], SEED[0], SEED[2]] } },
      /stocks must be Apple, Microsoft, Facebook, in that order/,
    ],
    [
      'an unknown stock',
      {
        type: 'update',
        update: { ...update, stocks: [{ name: 'IBM', price: 1 }, SEED[1], SEED[2]] },
      },
      /update\.stocks\.0\.name: /,
    ],
    ['a missing ts', { type: 'update', update: { ...update, ts: undefined } }, /update\.ts: /],
    ['an extra key', { type: 'update', update: { ...update, extra: 1 } }, /"extra"/],
    ['a reply without id', { type: 'reply', reply: { ok: false, error: 'x' } }, /id: /],
    ['a malformed reply', { type: 'reply', id: 1, reply: { ok: true } }, /reply: /],
    ['a ready without state', { type: 'ready' }, /state: /],
  ])('rejects %s', (_label, message, error) => {
    const text = errorOf(parseChildMessage(message));
    expect(text).toMatch(/^bad message from ticker: /);
    expect(text).toMatch(error);
  });
});

function priced(index: number, price: number): Stock[] {
  return SEED.map((stock, i) => (i === index ? { ...stock, price } : { ...stock }));
}

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
