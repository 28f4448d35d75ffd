/** What cluster nodes say to each other through Redis, and the ticker state kept there. Checked
 * on arrival: another node may run another version, and Redis is shared with whoever reaches it. */
import { z } from 'zod';

import {
  opReplySchema,
  parse,
  parseJson,
  stockNameSchema,
  updateSchema,
  type Parsed,
} from './validation';

/** The ticker state as the leader keeps it in Redis. `unannounced`: it holds acknowledged buys no
 * update has carried yet; `epoch`: the term that wrote it (a term only writes over older ones). */
const storedStateSchema = updateSchema.extend({
  unannounced: z.boolean(),
  epoch: z.number().int().positive(),
});

/** An op a node forwards to every other node (Socket.IO's serverSideEmit); the leader applies it. */
const forwardedOpSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('start') }),
  z.strictObject({ type: z.literal('stop') }),
  z.strictObject({ type: z.literal('buy'), name: stockNameSchema }),
]);

/** A node's answer to a forwarded op: the leader's reply, null from a node that does not lead. */
const forwardedReplySchema = opReplySchema.nullable();

export type StoredState = z.infer<typeof storedStateSchema>;
export type ForwardedOp = z.infer<typeof forwardedOpSchema>;
export type ForwardedReply = z.infer<typeof forwardedReplySchema>;

export const parseStoredState = (text: string): Parsed<StoredState> =>
  parseJson(storedStateSchema, 'stored state', text);

export const parseForwardedOp = (value: unknown): Parsed<ForwardedOp> =>
  parse(forwardedOpSchema, 'forwarded op', value);

export const parseForwardedReply = (value: unknown): Parsed<ForwardedReply> =>
  parse(forwardedReplySchema, 'op reply', value);
