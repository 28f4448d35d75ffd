/** The one place where input from outside a process (a socket, the IPC channel) stops being
 * `unknown`; everything past these functions trusts the types. */
import { z } from 'zod';

import type { StatusPayload, UpdatePayload } from './events';
import { MAX_STOCK_NAME_LENGTH, STOCK_NAMES, type StockName } from './stocks';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const stockNameList = STOCK_NAMES.join(', ');

export const stockNameSchema = z
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

export const updateSchema = z.strictObject({
  stocks: stocksSchema,
  running: z.boolean(),
  seq: z.number().int().nonnegative(),
  ts: z.number().nonnegative(),
});

/** A state file: a ticker state plus its `unannounced` mark, with room for seq to grow (the next
 * update and an unannounced buy's update at load must stay exact integers). */
export const savedStateSchema = updateSchema.extend({
  seq: z
    .number()
    .int()
    .nonnegative()
    .max(Number.MAX_SAFE_INTEGER - 2, { error: 'seq is too close to 2^53 to go on counting' }),
  // Files written before the mark existed were saved on an update, so announced.
  unannounced: z.boolean().default(false),
});

export const opIdSchema = z.number().int().nonnegative();

const errorReply = z.strictObject({ ok: z.literal(false), error: z.string() });
export const runReplySchema = z.union([
  z.strictObject({ ok: z.literal(true), running: z.boolean(), changed: z.boolean() }),
  errorReply,
]);
export const buyReplySchema = z.union([
  z.strictObject({ ok: z.literal(true), running: z.boolean(), stock: stockSchema }),
  errorReply,
]);
export const opReplySchema = z.union([runReplySchema, buyReplySchema]);

const statusSchema = z.strictObject({ message: z.string(), running: z.boolean() });

/** `value` checked against `schema`; a refusal says what was bad. */
export function parse<T>(schema: z.ZodType<T>, what: string, value: unknown): Parsed<T> {
  const result = schema.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad ${what}: ${firstMessage(result.error)}` };
}

/** A JSON text from Redis or another node, checked against `schema`. */
export function parseJson<T>(schema: z.ZodType<T>, what: string, text: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: `bad ${what}: not JSON` };
  }
  return parse(schema, what, json);
}

/** An `update` payload broadcast through the cluster. */
export const parseUpdatePayload = (value: unknown): Parsed<UpdatePayload> =>
  parse(updateSchema, 'update', value);

/** A `status` payload broadcast through the cluster. */
export const parseStatusPayload = (value: unknown): Parsed<StatusPayload> =>
  parse(statusSchema, 'status', value);

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
