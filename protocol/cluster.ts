/** What cluster nodes say to each other through Redis, and the ticker state kept there. Checked
 * on arrival: another node may run another version, and Redis is shared with whoever reaches it. */
import { z } from 'zod';

import {
  opIdSchema,
  opReplySchema,
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

/** An op a node forwards to the leader; `from` names the channel the reply goes to. */
const remoteOpSchema = z.strictObject({
  id: opIdSchema,
  // A node id names a Redis channel: keep it short and printable.
  from: z.string().regex(/^[\w.:-]{1,100}$/),
  op: z.discriminatedUnion('type', [
    z.strictObject({ type: z.literal('start') }),
    z.strictObject({ type: z.literal('stop') }),
    z.strictObject({ type: z.literal('buy'), name: stockNameSchema }),
  ]),
});

/** The leader's answer to one RemoteOp. */
const remoteReplySchema = z.strictObject({ id: opIdSchema, reply: opReplySchema });

export type StoredState = z.infer<typeof storedStateSchema>;
export type RemoteOp = z.infer<typeof remoteOpSchema>;
export type RemoteReply = z.infer<typeof remoteReplySchema>;

export const parseStoredState = (text: string): Parsed<StoredState> =>
  parseJson(storedStateSchema, 'stored state', text);

export const parseRemoteOp = (text: string): Parsed<RemoteOp> =>
  parseJson(remoteOpSchema, 'forwarded op', text);

export const parseRemoteReply = (text: string): Parsed<RemoteReply> =>
  parseJson(remoteReplySchema, 'op reply', text);
