/** What cluster nodes say to each other through Redis, and the ticker state kept there. Checked
 * on arrival: another node may run another version, and Redis is shared with whoever reaches it. */
import type { OpReply, ParentOpWithoutId, TickerState } from './ipc';

/** The ticker state as the leader keeps it in Redis. */
export interface StoredState extends TickerState {
  /** Holds acknowledged buys that no update has carried yet (see ParentMessage init). */
  unannounced: boolean;
  /** The leadership term that wrote it; a term only ever writes over older or equal terms. */
  epoch: number;
}

/** An op a node forwards to the leader; `from` names the channel the reply goes to. */
export interface RemoteOp {
  id: number;
  from: string;
  op: ParentOpWithoutId;
}

/** The leader's answer to one RemoteOp. */
export interface RemoteReply {
  id: number;
  reply: OpReply;
}
