/** The one place where input from outside a process (a socket, the IPC channel) stops being
 * `unknown`; everything past these functions trusts the types. */
import { z } from 'zod';

import type { RemoteOp, RemoteReply, StoredState } from './cluster';
import type { StatusPayload, UpdatePayload } from './events';
import type { ChildMessage, ParentMessage } from './ipc';
import { MAX_STOCK_NAME_LENGTH, STOCK_NAMES, type StockName } from './stocks';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const stockNameList = STOCK_NAMES.join(', ');

const stockNameSchema = z
  .string({ error: 'stock name must be a string' })
  .max(MAX_STOCK_NAME_LENGTH, {
    error: `stock name longer than ${MAX_STOCK_NAME_LENGTH} characters`,
  })
  .pipe(
    z.enum(STOCK_NAMES as [StockName, ...StockName[]], {
      error: (issue) => `unknown stock ${quote(issue.input)}; expected one of ${stockNameList}`,
    }),
  );

const buyArgsSchema = z.tuple([stockNameSchema], {
  error: 'buy takes exactly one argument: a stock name',
});

const noArgsSchema = z.tuple([], { error: 'takes no arguments' });

/** Arguments of `buy`, without the acknowledgement callback. */
export function parseBuyArgs(args: readonly unknown[]): Parsed<StockName> {
  const result = buyArgsSchema.safeParse(args);
  // The argument position means nothing to a caller, so the message goes out without a path.
  return result.success
    ? { ok: true, value: result.data[0] }
    : { ok: false, error: firstMessage(result.error, false) };
}

/** Arguments of `start` / `stop`, without the acknowledgement callback. */
export function parseNoArgs(event: string, args: readonly unknown[]): Parsed<[]> {
  const result = noArgsSchema.safeParse(args);
  return result.success
    ? { ok: true, value: [] }
    : { ok: false, error: `${event} takes no arguments` };
}

const finitePrice = z.number().finite().positive();
const stockSchema = z.strictObject({
  name: z.enum(STOCK_NAMES as [StockName, ...StockName[]]),
  price: finitePrice,
});
const stocksSchema = z
  .array(stockSchema)
  .length(STOCK_NAMES.length)
  .refine((stocks) => stocks.every((stock, i) => stock.name === STOCK_NAMES[i]), {
    error: `stocks must be ${stockNameList}, in that order`,
  });

const tickerStateSchema = z.strictObject({
  stocks: stocksSchema,
  running: z.boolean(),
  seq: z.number().int().nonnegative(),
  ts: z.number().nonnegative(),
});

/** A state file: a ticker state plus its `unannounced` mark, with room for seq to grow (the next
 * update and an unannounced buy's update at load must stay exact integers). */
export const savedStateSchema = tickerStateSchema.extend({
  seq: z
    .number()
    .int()
    .nonnegative()
    .max(Number.MAX_SAFE_INTEGER - 2, { error: 'seq is too close to 2^53 to go on counting' }),
  // Files written before the mark existed were saved on an update, so announced.
  unannounced: z.boolean().default(false),
});

const opId = z.number().int().nonnegative();

const parentMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('init'),
    state: tickerStateSchema,
    tickMs: z.number().int().min(10).max(3_600_000),
    unannounced: z.boolean(),
  }),
  z.strictObject({ type: z.literal('start'), id: opId }),
  z.strictObject({ type: z.literal('stop'), id: opId }),
  z.strictObject({ type: z.literal('buy'), id: opId, name: stockNameSchema }),
  z.strictObject({ type: z.literal('delivered'), seq: z.number().int().nonnegative() }),
  z.strictObject({ type: z.literal('ping'), id: opId }),
]);

const stockReply = z.strictObject({
  ok: z.literal(true),
  running: z.boolean(),
  stock: stockSchema,
});
const runReply = z.strictObject({
  ok: z.literal(true),
  running: z.boolean(),
  changed: z.boolean(),
});
const errorReply = z.strictObject({ ok: z.literal(false), error: z.string() });

const childMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready'), state: tickerStateSchema }),
  z.strictObject({ type: z.literal('update'), update: tickerStateSchema }),
  z.strictObject({
    type: z.literal('reply'),
    id: opId,
    reply: z.union([stockReply, runReply, errorReply]),
  }),
  z.strictObject({ type: z.literal('pong'), id: opId }),
  z.strictObject({ type: z.literal('rejected'), error: z.string() }),
]);

const storedStateSchema = tickerStateSchema.extend({
  unannounced: z.boolean(),
  epoch: z.number().int().positive(),
});

const remoteOpSchema = z.strictObject({
  id: opId,
  // A node id names a Redis channel: keep it short and printable.
  from: z.string().regex(/^[\w.:-]{1,100}$/),
  op: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('start') }),
    z.strictObject({ type: z.literal('stop') }),
    z.strictObject({ type: z.literal('buy'), name: stockNameSchema }),
  ]),
});

const remoteReplySchema = z.strictObject({
  id: opId,
  reply: z.union([stockReply, runReply, errorReply]),
});

const statusSchema = z.strictObject({ message: z.string(), running: z.boolean() });

export function parseParentMessage(message: unknown): Parsed<ParentMessage> {
  const result = parentMessageSchema.safeParse(message);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad message from parent: ${firstMessage(result.error)}` };
}

export function parseChildMessage(message: unknown): Parsed<ChildMessage> {
  const result = childMessageSchema.safeParse(message);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad message from ticker: ${firstMessage(result.error)}` };
}

/** A JSON text from Redis or another node, checked against `schema`. */
function parseJson<T>(schema: z.ZodType<T>, what: string, text: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: `bad ${what}: not JSON` };
  }
  const result = schema.safeParse(json);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad ${what}: ${firstMessage(result.error)}` };
}

export const parseStoredState = (text: string): Parsed<StoredState> =>
  parseJson(storedStateSchema, 'stored state', text);

export const parseRemoteOp = (text: string): Parsed<RemoteOp> =>
  parseJson(remoteOpSchema, 'forwarded op', text);

export const parseRemoteReply = (text: string): Parsed<RemoteReply> =>
  parseJson(remoteReplySchema, 'op reply', text);

/** An `update` payload broadcast through the cluster. */
export function parseUpdatePayload(value: unknown): Parsed<UpdatePayload> {
  const result = tickerStateSchema.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad update: ${firstMessage(result.error)}` };
}

/** A `status` payload broadcast through the cluster. */
export function parseStatusPayload(value: unknown): Parsed<StatusPayload> {
  const result = statusSchema.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad status: ${firstMessage(result.error)}` };
}

function firstMessage(error: z.ZodError, withPath = true): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid input';
  const path = withPath && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return `${path}${issue.message}`;
}

/** Echo a bad value back in an error without echoing a megabyte of it. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
