/** Messages between the server (parent) and the ticker child, named by sender. Each op carries an
 * `id` and gets exactly one `reply` with that `id`, so every ack reaches the socket that asked. */
import type { Stock, UpdatePayload } from './events';
import { SEED_STOCKS, type StockName } from './stocks';

/** What the ticker owns and what a new child is handed so it continues where the last stopped. */
export interface TickerState {
  stocks: Stock[];
  running: boolean;
  seq: number;
  ts: number;
}

export type ParentMessage =
  /** `unannounced`: the state holds acknowledged buys no `update` has carried yet (the last
   * child died in between), so the new child must broadcast them. */
  | { type: 'init'; state: TickerState; tickMs: number; unannounced: boolean }
  | { type: 'start'; id: number }
  | { type: 'stop'; id: number }
  | { type: 'buy'; id: number; name: StockName }
  /** Flow control, not answered: updates up to `seq` reached every socket. Until then the child
   * conflates buys and delays ticks, so it never queues more than the server can broadcast. */
  | { type: 'delivered'; seq: number }
  /** Are you there? Answered with a `pong`; a child that stays silent is replaced. */
  | { type: 'ping'; id: number };

/** The messages that are ops: they carry an `id` and get exactly one `reply`. */
type ParentOp = Exclude<ParentMessage, { type: 'init' | 'delivered' | 'ping' }>;
/** An op as the sender words it, before it is given its id. */
export type ParentOpWithoutId = ParentOp extends infer M
  ? M extends ParentOp
    ? Omit<M, 'id'>
    : never
  : never;

/** `changed` is false when start / stop was a no-op; the parent only broadcasts real changes. */
export type RunReply =
  { ok: true; running: boolean; changed: boolean } | { ok: false; error: string };
export type BuyReply = { ok: true; running: boolean; stock: Stock } | { ok: false; error: string };
export type OpReply = RunReply | BuyReply;

export type ChildMessage =
  /** The child has applied `init` and is ready for ops. */
  | { type: 'ready'; state: TickerState }
  /** A price change to broadcast; `seq` has advanced by one. */
  | { type: 'update'; update: UpdatePayload }
  | { type: 'reply'; id: number; reply: OpReply }
  | { type: 'pong'; id: number }
  /** The child received something it could not use; the parent logs it. */
  | { type: 'rejected'; error: string };

/** The state of a ticker that has never run: the seed prices, stopped, no update yet. */
export function seedTickerState(ts: number): TickerState {
  return {
    stocks: SEED_STOCKS.map((stock) => ({ name: stock.name, price: stock.price })),
    running: false,
    seq: 0,
    ts,
  };
}
