/** Where input from a socket, IPC or Redis stops being `unknown`; types are z.infer of checks. */
import { z } from 'zod';

import { HISTORY_LENGTH, LAST_SEQ, STOCK_NAMES, type StockName } from './stocks';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const stockNameList = STOCK_NAMES.join(', ');
const stockEnum = z.enum(STOCK_NAMES as [StockName, ...StockName[]], {
  error: (issue) => `unknown stock ${quote(issue.input)}; expected one of ${stockNameList}`,
});

export const stockNameSchema = z
  .string({ error: 'stock name must be a string' })
  // Anything longer is refused unread.
  .max(64, { error: 'stock name longer than 64 characters' })
  .pipe(stockEnum);

/** Arguments of `buy` (and below, of `start` / `stop`), without the acknowledgement callback. */
export const parseBuyArgs = (args: readonly unknown[]): Parsed<StockName> =>
  args.length === 1
    ? parse(stockNameSchema, null, args[0])
    : { ok: false, error: 'buy takes exactly one argument: a stock name' };
export const parseNoArgs = (event: string, args: readonly unknown[]): Parsed<[]> =>
  args.length === 0 ? { ok: true, value: [] } : { ok: false, error: `${event} takes no arguments` };

export const stockSchema = z.strictObject({
  name: stockEnum,
  /** The exact price; never rounded on the wire, clients format it. */
  price: z.number().positive(),
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
  /** +1 with every update broadcast; survives crashes and restarts; the model stops at LAST_SEQ. */
  seq: z.number().int().nonnegative().max(LAST_SEQ, { error: 'seq is too close to 2^53 to go on' }),
  /** Milliseconds since the epoch when the update was made. */
  ts: z.number().nonnegative(),
});

/** A refused op, with a message written for the caller. */
export const ackErrorSchema = z.strictObject({ ok: z.literal(false), error: z.string() });
/** An op's answer: `ok` with what `shape` says, or a refusal. */
export const ackOf = <T extends z.ZodRawShape>(shape: T) =>
  z.union([z.strictObject({ ok: z.literal(true), ...shape }), ackErrorSchema]);
export const runAckSchema = ackOf({ running: z.boolean() });
export const buyAckSchema = ackOf({ stock: stockSchema });
/** The body of `POST /api/buy`; a socket's `buy` sends the name alone. */
export const buyBodySchema = z.strictObject({ name: stockNameSchema });

/** The latest updates sent, oldest first, to the snapshot: a late joiner draws trends at once. */
export const historySchema = z.strictObject({ updates: z.array(updateSchema) });
export const statusSchema = z.strictObject({ message: z.string(), running: z.boolean() });
/** The prices at the last start (or the first the server knew), their update's seq, and when. */
export const openingSchema = updateSchema.pick({ stocks: true, seq: true, ts: true });

const ascending = (updates: { seq: number }[]) =>
  updates.every(({ seq }, i) => i === 0 || seq > updates[i - 1]!.seq);

/** A state file's or Redis's: a ticker state, `unannounced` if it holds buys no update carried;
 * not strict, nor its stocks: a later version's state, with keys of its own, stays readable here. */
export const savedStateSchema = z.object({
  ...updateSchema.shape,
  stocks: z.array(z.object(stockSchema.shape)).pipe(updateSchema.shape.stocks),
  // Files written before the mark existed were saved on an update, so announced.
  unannounced: z.boolean().default(false),
  // Absent from older files, or dropped if bad: neither is worth refusing the prices and seq for.
  opening: openingSchema.optional().catch(undefined),
  history: z.array(updateSchema).max(HISTORY_LENGTH).refine(ascending).optional().catch(undefined),
});
export type SavedState = z.infer<typeof savedStateSchema>;

/** `value` checked against `schema`; a refusal says what was bad (`what`, if not obvious). */
export function parse<T>(schema: z.ZodType<T>, what: string | null, value: unknown): Parsed<T> {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const issue = result.error.issues[0] ?? { path: [], message: 'invalid input' };
  const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { ok: false, error: `${what ? `bad ${what}: ` : ''}${at}${issue.message}` };
}

export function parseJson<T>(schema: z.ZodType<T>, what: string, text: string): Parsed<T> {
  try {
    return parse(schema, what, JSON.parse(text));
  } catch {
    return { ok: false, error: `bad ${what}: ${text ? 'not JSON' : 'empty'}` };
  }
}

/** Echo a bad value back in an error without echoing a megabyte of it. */
function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
