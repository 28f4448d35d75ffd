/** Every check on input from outside a process, once: a socket's arguments, the ticker state (the
 * one schema behind IPC, the state file, Redis and the adapter), and each message kind. */
import type { Stock } from '../../protocol/events';
import { newestOf, storedStateSchema } from '../../server/cluster/node';
import { opReplySchema, opSchema, parseChildMessage, parseParentMessage } from '../../protocol/ipc';
import {
  parse,
  parseBuyArgs,
  parseJson,
  parseNoArgs,
  savedStateSchema,
  statusSchema,
  updateSchema,
  type Parsed,
} from '../../protocol/validation';
import { LAST_SEQ } from '../../protocol/stocks';
import { SEED, stateOf } from '../helpers/prices';

const parsers = {
  'buy args': (args) => parseBuyArgs(args as unknown[]),
  'stop args': (args) => parseNoArgs('stop', args as unknown[]),
  update: (state) => parse(updateSchema, 'update', state),
  saved: (state) => parse(savedStateSchema, 'saved', state),
  status: (status) => parse(statusSchema, 'status', status),
  parent: parseParentMessage,
  child: parseChildMessage,
  stored: (text) => parseJson(storedStateSchema, 'stored state', text as string),
  op: (op) => parse(opSchema, 'forwarded op', op),
  reply: (reply) => parse(opReplySchema.nullable(), 'op reply', reply),
} satisfies Record<string, (input: unknown) => Parsed<unknown>>;
type Kind = keyof typeof parsers;

const good = stateOf({ running: true, seq: 5 });
const [apple, microsoft, facebook] = SEED as [Stock, Stock, Stock];
const withStocks = (...stocks: unknown[]) => ({ ...good, stocks });
const firstStock = (stock: object) => withStocks(stock, microsoft, facebook);
const priced = (price: unknown) => firstStock({ ...apple, price });
const init = { type: 'init', state: good, tickMs: 10, unannounced: false };
const childReply = (reply: object) => ({ type: 'reply', id: 1, reply });
const stored = { ...good, unannounced: false, epoch: 3 };
const saved = { ...good, unannounced: false };
const { running: _running, ...opening } = good;
const LIST = 'Apple, Microsoft, Facebook';
const unknown = (name: string) => `unknown stock ${JSON.stringify(name)}; expected one of ${LIST}`;

test.each<[Kind, unknown, unknown?]>([
  ['buy args', ['Microsoft'], 'Microsoft'],
  ['stop args', [], []],
  ['update', { ...good, seq: LAST_SEQ }],
  ['saved', { ...good, seq: LAST_SEQ }, { ...good, seq: LAST_SEQ, unannounced: false }],
  ['saved', { ...good, unannounced: true }],
  ['saved', { ...saved, opening, history: [good] }],
  // A bad opening or history is dropped, not the whole state with it.
  ['saved', { ...saved, opening: 1, history: [1] }, saved],
  ['saved', { ...saved, history: [good, good] }, saved],
  // A key a later version saves, in a stock too, is dropped; an update takes none (below).
  ['saved', { ...saved, leader: 'node-1' }, saved],
  ['saved', { ...saved, ...firstStock({ ...apple, x: 1 }) }, saved],
  ['status', { message: 'Stopped', running: false }],
  // The other kinds, well formed, are spoken in child.test.ts and ticker-supervisor.test.ts.
  ['parent', { ...init, unannounced: true }],
  ['parent', { type: 'start', id: 0 }],
  ['child', { type: 'reply', id: 3, reply: { ok: false, error: 'nope' } }],
  ['child', { type: 'rejected', error: 'bad message from parent: x' }],
  ['stored', JSON.stringify(stored), stored],
  ['op', { type: 'buy', name: 'Facebook' }],
  ['reply', { ok: true, running: false, stock: apple }],
  // From a node that does not lead.
  ['reply', null],
])('%s accepts %j', (kind, input, value = input) => {
  expect(parsers[kind](input)).toEqual({ ok: true, value });
});

// A row per rule: the inputs it refuses, and what the error says.
test.each<[Kind, unknown[], string | RegExp]>([
  ['update', [{ ...good, leader: 'node-1' }], /^bad update: Unrecognized key: "leader"$/],
  ['update', [firstStock({ ...apple, x: 1 })], /^bad update: stocks.0: Unrecognized key: "x"$/],
  ['buy args', [[], ['Apple', 'Apple']], /^buy takes exactly one argument: a stock name$/],
  ['buy args', [[42]], /^stock name must be a string$/],
  ['buy args', [['apple']], unknown('apple')],
  // A name a lookup on a plain object would find.
  ['buy args', [['__proto__']], unknown('__proto__')],
  // A bad name is echoed, but only a short prefix of it.
  ['buy args', [['y'.repeat(64)]], `unknown stock "${'y'.repeat(36)}...; expected one of ${LIST}`],
  ['buy args', [['x'.repeat(65)]], /^stock name longer than 64 characters$/],
  ['stop args', [[undefined]], /^stop takes no arguments$/],
  ['saved', [{ ...good, unannounced: 'yes' }], /^bad saved: unannounced: /],
  ['status', [{ message: 'Stopped' }], /^bad status: running: /],
  ['parent', [null], /^bad message from parent: .*expected object/],
  ['parent', [{ type: 'sell', id: 1 }], /^bad message from parent: type: /],
  ['parent', [{ type: 'start' }, { type: 'start', id: -1 }, { type: 'start', id: 0.5 }], /: id: /],
  ['parent', [{ type: 'stop', id: 1, force: true }], /: Unrecognized key: "force"/],
  ['parent', [{ type: 'buy', id: 1 }], /: name: /],
  ['parent', [{ type: 'buy', id: 1, name: 'apple' }], /: name: unknown stock "apple"/],
  ['parent', [9, 3_600_001, 10.5].map((tickMs) => ({ ...init, tickMs })), /: tickMs: /],
  ['parent', [{ ...init, state: { ...good, seq: -1 } }], /: state\.seq: /],
  ['child', [{ type: 'tick' }], /^bad message from ticker: type: /],
  ['child', [{ type: 'ready' }], /: state: /],
  ['child', [{ type: 'update', update: priced(Infinity) }], /: update\.stocks\.0\.price: /],
  ['child', [{ type: 'reply', reply: { ok: false, error: 'x' } }], /: id: /],
  ['child', [{ ok: true }, { ok: false, error: 'x', x: 1 }].map(childReply), /: reply: /],
  ['stored', ['{"stocks":'], /^bad stored state: not JSON$/],
  ['stored', [undefined, 0].map((epoch) => JSON.stringify({ ...stored, epoch })), /: epoch: /],
  ['op', [{ type: 'init' }], /^bad forwarded op: type: /],
  ['op', [{ type: 'start', id: 1 }], /^bad forwarded op: Unrecognized key: "id"/],
  ['op', [{ type: 'buy', name: 'Tesla' }], /^bad forwarded op: name: unknown stock/],
  ['reply', [{ ok: true }, undefined], /^bad op reply: /],
])('%s refuses %j, briefly', (kind, inputs, error) => {
  for (const input of inputs) {
    const result = parsers[kind](input);
    expect(result).toEqual({ ok: false, error: expect.stringMatching(error) });
    expect(!result.ok && result.error.length).toBeLessThan(200);
  }
});

test.each<[string, unknown[], string]>([
  ['a price not finite and positive', [Infinity, 0, '14.5'].map(priced), 'stocks.0.price: '],
  ['a stock missing', [withStocks(apple, microsoft)], 'stocks: '],
  ['an unknown stock', [firstStock({ name: 'IBM', price: 1 })], 'stocks.0.name: '],
  ['stocks reordered', [withStocks(facebook, microsoft, apple)], `stocks: stocks must be ${LIST}`],
  ['a seq not a whole number', [-1, 1.5, 2 ** 53].map((seq) => ({ ...good, seq })), 'seq: '],
  ['a seq past the last', [{ ...good, seq: LAST_SEQ + 1 }], 'seq: seq is too close to 2^53'],
  ['a ts missing or negative', [undefined, -1].map((ts) => ({ ...good, ts })), 'ts: '],
  ['no running', [{ ...good, running: undefined }], 'running: '],
  ['null', [null], ''],
])('a state with %s is refused as an update and as a saved state', (_, states, problem) => {
  for (const kind of ['update', 'saved'] as const) {
    const error = expect.stringContaining(`bad ${kind}: ${problem}`);
    for (const state of states) expect(parsers[kind](state)).toEqual({ ok: false, error });
  }
});

test('of the states the nodes report after Redis lost its own: the highest seq; at one seq, the one holding buys no update carried', () => {
  const at = (seq: number, unannounced = false) => ({ ...stateOf({ seq }), unannounced });
  const [older, announced, withBuys, six] = [at(4), at(5), at(5, true), at(6)];
  expect(newestOf([older, announced])).toBe(announced);
  expect(newestOf([announced, older, withBuys, at(5)])).toBe(withBuys);
  expect(newestOf([withBuys, announced])).toBe(withBuys);
  expect(newestOf([withBuys, at(5, true)])).toBe(withBuys);
  expect(newestOf([six, withBuys])).toBe(six);
  // Alike: the first, the asking node's own.
  expect(newestOf([announced, at(5)])).toBe(announced);
});
