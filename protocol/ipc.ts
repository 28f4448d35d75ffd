/** Server ⇄ ticker child messages, named by sender: each op's `id` gets exactly one `reply`. */
import { z } from 'zod';

import type { OpeningPayload, UpdatePayload } from './events';
import { SEED_STOCKS } from './stocks';
import * as v from './validation';

const start = z.strictObject({ type: z.literal('start') });
const stop = z.strictObject({ type: z.literal('stop') });
const buy = z.strictObject({ type: z.literal('buy'), name: v.stockNameSchema });
/** An op without the IPC's `id`, as a cluster node forwards it to the leader. */
export const opSchema = z.discriminatedUnion('type', [start, stop, buy]);
const withId = { id: z.number().int().nonnegative() };

/** `changed` is false when start / stop was a no-op; the parent only broadcasts real changes. */
const runReplySchema = v.ackOf({ running: z.boolean(), changed: z.boolean() });
const buyReplySchema = v.ackOf({ running: z.boolean(), stock: v.stockSchema });
export const opReplySchema = z.union([runReplySchema, buyReplySchema]);

const parentMessageSchema = z.discriminatedUnion('type', [
  /** `unannounced`: the state holds acked buys no `update` carried (the last child died first). */
  z.strictObject({
    type: z.literal('init'),
    state: v.updateSchema,
    tickMs: z.number().int().min(10).max(3_600_000),
    unannounced: z.boolean(),
  }),
  ...opSchema.options.map((op) => op.extend(withId)),
  /** Flow control, not answered: updates up to `seq` reached every socket. Until then the child
   * conflates buys and delays ticks, so it never queues more than the server can broadcast. */
  z.strictObject({ type: z.literal('delivered'), seq: z.number().int().nonnegative() }),
  /** Are you there? Answered with a `pong`; a child that stays silent is replaced. */
  z.strictObject({ type: z.literal('ping'), ...withId }),
]);

const childMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ready'), state: v.updateSchema }),
  /** A price change to broadcast; `seq` has advanced by one. */
  z.strictObject({ type: z.literal('update'), update: v.updateSchema }),
  z.strictObject({ type: z.literal('reply'), ...withId, reply: opReplySchema }),
  z.strictObject({ type: z.literal('pong'), ...withId }),
  /** The child received something it could not use; the parent logs it. */
  z.strictObject({ type: z.literal('rejected'), error: z.string() }),
]);

export type ParentMessage = z.infer<typeof parentMessageSchema>;
export type ChildMessage = z.infer<typeof childMessageSchema>;
export type Op = z.infer<typeof opSchema>;
export type RunReply = z.infer<typeof runReplySchema>;
export type BuyReply = z.infer<typeof buyReplySchema>;
export type OpReply = z.infer<typeof opReplySchema>;

export const parseParentMessage = (message: unknown) =>
  v.parse(parentMessageSchema, 'message from parent', message);
export const parseChildMessage = (message: unknown) =>
  v.parse(childMessageSchema, 'message from ticker', message);

export function seedTickerState(ts: number): UpdatePayload {
  const stocks = SEED_STOCKS.map(({ name, price }) => ({ name, price }));
  return { stocks, running: false, seq: 0, ts };
}

/** The opening a state holds or, saved before there were any, its own prices: the first known. */
export const openingOf = (state: UpdatePayload & { opening?: OpeningPayload | undefined }) =>
  state.opening ?? { stocks: state.stocks, seq: state.seq, ts: state.ts };

/** The ticker's own part of a saved state, as the child and an `update` have it. */
export function tickerState({ stocks, running, seq, ts }: UpdatePayload): UpdatePayload {
  return { stocks, running, seq, ts };
}
