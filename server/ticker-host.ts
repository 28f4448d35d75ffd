/** What the realtime layer needs from a ticker: one node's forked child, or a cluster leader's. */
import type { EventEmitter } from 'node:events';

import type { OpeningPayload, StatusPayload, UpdatePayload } from '../protocol/events';
import type { BuyReply, RunReply } from '../protocol/ipc';
import { HISTORY_LENGTH, type StockName } from '../protocol/stocks';

/** `offset` (cluster): Socket.IO's recovery offset. `lost`: ops are refused until `back`. */
export interface TickerHostEvents {
  update: [update: UpdatePayload, offset?: string];
  lost: [reason: string];
  back: [];
  opening: [opening: OpeningPayload, offset?: string];
  /** From a host that carries statuses itself (broadcastStatus), in order with updates. */
  status: [status: StatusPayload, offset?: string];
}

export interface HostHealth {
  /** ok: ops are taken; degraded: up but impaired (no leader, Redis away); down: no ticker. */
  status: 'ok' | 'degraded' | 'down';
  /** Extra facts for /healthz (a cluster node's role, Redis, the leader). */
  details?: Record<string, unknown>;
}

export interface TickerHost extends Pick<EventEmitter<TickerHostEvents>, 'on' | 'off'> {
  start(): Promise<RunReply>;
  stop(): Promise<RunReply>;
  buy(name: StockName): Promise<BuyReply>;
  /** Flow control: updates up to `seq` reached every socket; the host may hold its next back. */
  delivered(seq: number): void;
  /** The last update's prices, seq and ts with the current running flag. */
  snapshot(): UpdatePayload;
  /** What else greets a new socket: the updates sent, up to the snapshot's, and the opening. */
  greeting(): { history: UpdatePayload[]; opening: OpeningPayload };
  /** Sends a status through the host (a cluster's stream); without it, they stay on this node. */
  broadcastStatus?(status: StatusPayload): void;
  /** Resolves once the ticker can take ops. */
  open(): Promise<void>;
  close(): Promise<void>;
  /** The ticker process, if there is one right now (for /healthz). */
  readonly pid: number | undefined;
  health(): HostHealth;
}

/** `history` before `update`, then `update`: the last HISTORY_LENGTH, oldest first. */
export const historyTo = (history: readonly UpdatePayload[], update: UpdatePayload) =>
  [...history.filter(({ seq }) => seq < update.seq), update].slice(-HISTORY_LENGTH);
