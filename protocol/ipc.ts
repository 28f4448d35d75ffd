/** Messages between the server (parent) and the ticker child, named by sender. Each op carries an
 * `id` and gets exactly one `reply` with that `id`, so every ack reaches the socket that asked. */
import { z } from 'zod';

import type { UpdatePayload } from './events';
import { SEED_STOCKS } from './stocks';
import {
  type buyReplySchema,
  opIdSchema,
  opReplySchema,
  parse,
  type runReplySchema,
  stockNameSchema,
  updateSchema,
  type Parsed,
} from './validation';

const parentMessageSchema = z.discriminatedUnion('type', [
  /** `unannounced`: the state holds acknowledged buys no `update` has carried yet (the last
   * child died in between), so the new child must broadcast them. */
  z.strictObject({
    type: z.literal('init'),
    state: updateSchema,
    tickMs: z.number().int().min(10).max(3_600_000),
    unannounced: z.boolean(),
  }),
  z.strictObject({ type: z.literal('start'), id: opIdSchema }),
  z.strictObject({ type: z.literal('stop'), id: opIdSchema }),
  z.strictObject({ type: z.literal('buy'), id: opIdSchema, name: stockNameSchema }),
  /** Flow control, not answered: updates up to `seq` reached every socket. Until then the child
   * conflates buys and delays ticks, so it never queues more than the server can broadcast. */
  z.strictObject({ type: z.literal('delivered'), seq: z.number().int().nonnegative() }),
  /** Are you there? Answered with a `pong`; a child that stays silent is replaced. */
  z.strictObject({ type: z.literal('ping'), id: opIdSchema }),
]);

const childMessageSchema = z.discriminatedUnion('type', [
  /** The child has applied `init` and is ready for ops. */
  z.strictObject({ type: z.literal('ready'), state: updateSchema }),
  /** A price change to broadcast; `seq` has advanced by one. */
  z.strictObject({ type: z.literal('update'), update: updateSchema }),
  z.strictObject({ type: z.literal('reply'), id: opIdSchema, reply: opReplySchema }),
  z.strictObject({ type: z.literal('pong'), id: opIdSchema }),
  /** The child received something it could not use; the parent logs it. */
  z.strictObject({ type: z.literal('rejected'), error: z.string() }),
]);

export type ParentMessage = z.infer<typeof parentMessageSchema>;
export type ChildMessage = z.infer<typeof childMessageSchema>;
/** `changed` is false when start / stop was a no-op; the parent only broadcasts real changes. */
export type RunReply = z.infer<typeof runReplySchema>;
export type BuyReply = z.infer<typeof buyReplySchema>;
export type OpReply = z.infer<typeof opReplySchema>;

/** The messages that are ops: they carry an `id` and get exactly one `reply`. */
type ParentOp = Exclude<ParentMessage, { type: 'init' | 'delivered' | 'ping' }>;
/** An op as the sender words it, before it is given its id. */
export type ParentOpWithoutId = ParentOp extends infer M
  ? M extends ParentOp
    ? Omit<M, 'id'>
    : never
  : never;

export const parseParentMessage = (message: unknown): Parsed<ParentMessage> =>
  parse(parentMessageSchema, 'message from parent', message);

export const parseChildMessage = (message: unknown): Parsed<ChildMessage> =>
  parse(childMessageSchema, 'message from ticker', message);

/** The state of a ticker that has never run: the seed prices, stopped, no update yet. */
export function seedTickerState(ts: number): UpdatePayload {
  return {
    stocks: SEED_STOCKS.map((stock) => ({ name: stock.name, price: stock.price })),
    running: false,
    seq: 0,
    ts,
  };
}
