/** What cluster nodes say to each other through Redis, and the ticker state kept there. Checked
 * on arrival: another node may run another version, and Redis is shared with whoever reaches it. */
import { z } from 'zod';

import { opReplySchema, opSchema } from './ipc';
import { parse, updateSchema, type Parsed } from './validation';

/** The ticker state as the leader keeps it in Redis. `unannounced`: it holds acknowledged buys no
 * update has carried yet; `epoch`: the term that wrote it (a term only writes over older ones). */
const storedStateSchema = updateSchema.extend({
  unannounced: z.boolean(),
  epoch: z.number().int().positive(),
});

/** A node's answer to a forwarded op: the leader's reply, null from a node that does not lead. */
const forwardedReplySchema = opReplySchema.nullable();

export type StoredState = z.infer<typeof storedStateSchema>;
/** An op a node forwards to every other node (Socket.IO's serverSideEmit); the leader applies it. */
export type ForwardedOp = z.infer<typeof opSchema>;
export type ForwardedReply = z.infer<typeof forwardedReplySchema>;

export function parseStoredState(text: string): Parsed<StoredState> {
  try {
    return parse(storedStateSchema, 'stored state', JSON.parse(text));
  } catch {
    return { ok: false, error: 'bad stored state: not JSON' };
  }
}

export const parseForwardedOp = (value: unknown): Parsed<ForwardedOp> =>
  parse(opSchema, 'forwarded op', value);

export const parseForwardedReply = (value: unknown): Parsed<ForwardedReply> =>
  parse(forwardedReplySchema, 'op reply', value);
