/** The one place where input from outside a process (a socket, the IPC channel) stops being
 * `unknown`; everything past these functions trusts the types. The payload types are these
 * schemas' (z.infer), so a type and its check cannot drift apart. */
import { z } from 'zod';

import { STOCK_NAMES, type StockName } from './stocks';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const stockNameList = STOCK_NAMES.join(', ');
const stockEnum = z.enum(STOCK_NAMES as [StockName, ...StockName[]]);

export const stockNameSchema = z
  .string({ error: 'stock name must be a string' })
  // Anything longer is refused unread.
  .max(64, { error: 'stock name longer than 64 characters' })
  .pipe(
    z.enum(stockEnum.options, {
      error: (issue) => `unknown stock ${quote(issue.input)}; expected one of ${stockNameList}`,
    }),
  );

const buyArgsSchema = z.tuple([stockNameSchema], {
  error: 'buy takes exactly one argument: a stock name',
});

/** Arguments of `buy`, without the acknowledgement callback. */
export function parseBuyArgs(args: readonly unknown[]): Parsed<StockName> {
  const result = buyArgsSchema.safeParse(args);
  // The argument position means nothing to a caller, so the message goes out without a path.
  return result.success
    ? { ok: true, value: result.data[0] }
    : { ok: false, error: firstMessage(result.error, false) };
}

/** Arguments of `start` / `stop`, without the acknowledgement callback. */
export const parseNoArgs = (event: string, args: readonly unknown[]): Parsed<[]> =>
  args.length === 0 ? { ok: true, value: [] } : { ok: false, error: `${event} takes no arguments` };

export const stockSchema = z.strictObject({
  name: stockEnum,
  /** The exact price; never rounded on the wire, clients format it. */
  price: z.number().finite().positive(),
});

/** The ticker state: what an `update` carries, the child holds, and every store keeps. */
export const updateSchema = z.strictObject({
  stocks: z
    .array(stockSchema)
    .length(STOCK_NAMES.length)
    .refine((stocks) => stocks.every((stock, i) => stock.name === STOCK_NAMES[i]), {
      error: `stocks must be ${stockNameList}, in that order`,
    }),
  running: z.boolean(),
  /** +1 with every update broadcast; survives child crashes and server restarts. */
  seq: z.number().int().nonnegative(),
  /** Milliseconds since the epoch when the update was made. */
  ts: z.number().nonnegative(),
});

export const statusSchema = z.strictObject({ message: z.string(), running: z.boolean() });

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

/** `value` checked against `schema`; a refusal says what was bad. */
export function parse<T>(schema: z.ZodType<T>, what: string, value: unknown): Parsed<T> {
  const result = schema.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: `bad ${what}: ${firstMessage(result.error)}` };
}

/** An `update` payload broadcast through the cluster. */
export const parseUpdatePayload = (value: unknown) => parse(updateSchema, 'update', value);

/** A `status` payload broadcast through the cluster. */
export const parseStatusPayload = (value: unknown) => parse(statusSchema, 'status', value);

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
