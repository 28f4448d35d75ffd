/** What cluster nodes say to each other through Redis, and the ticker state kept there. Checked
 * on arrival: another node may run another version, and Redis is shared with whoever reaches it. */
import { z } from 'zod';

import { opReplySchema, opSchema } from './ipc';
import { parse, savedStateSchema, type Parsed } from './validation';

/** The state as the leader keeps it in Redis, with the term (`epoch`) that wrote it. */
const storedStateSchema = savedStateSchema.extend({ epoch: z.number().int().positive() });

/** A node's answer to a forwarded op: the leader's reply, null from a node that does not lead. */
const forwardedReplySchema = opReplySchema.nullable();

export type StoredState = z.infer<typeof storedStateSchema>;
/** An op a node forwards to every other node (Socket.IO's serverSideEmit); the leader applies it. */
export type ForwardedOp = z.infer<typeof opSchema>;

export function parseStoredState(text: string): Parsed<StoredState> {
  try {
    return parse(storedStateSchema, 'stored state', JSON.parse(text));
  } catch {
    return { ok: false, error: 'bad stored state: not JSON' };
  }
}

export const parseForwardedOp = (value: unknown) => parse(opSchema, 'forwarded op', value);
export const parseForwardedReply = (value: unknown) =>
  parse(forwardedReplySchema, 'op reply', value);
