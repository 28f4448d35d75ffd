/** Messages between the benchmark's orchestrator and its load workers (over Node IPC). */
import type { HistogramEntries } from './stats';

/**
 * forkcast, forkcast read by Server-Sent Events clients on /api/stream ('sse'), the
 * tutorial-style Socket.IO server, or raw `ws`: 'sse' and 'raw' speak no Socket.IO.
 */
export type ServerKind = 'forkcast' | 'sse' | 'tutorial' | 'raw';

export interface WorkerPlan {
  kind: ServerKind;
  /** The server's port, or a cluster's nodes' ports: see nodeOf. */
  ports: number[];
  /** The run-wide number of this worker's first client: see nodeOf. */
  firstClient: number;
  /** Clients that only watch updates. */
  watchers: number;
  /** Clients that also send buys (Socket.IO only). */
  buyers: number;
  /** Buys per second this worker sends in total, spread over its buyers. */
  buysPerSecond: number;
  /** Handshakes in flight at once, so the server's accept backlog never overflows. */
  connectConcurrency: number;
  /** An update whose latency exceeds this counts as late (the tick interval). */
  lateAfterMs: number;
}

export type OrchestratorMessage =
  | { type: 'plan'; plan: WorkerPlan }
  /** Count updates whose server `ts` falls in [from, to), and send buys during it. */
  | { type: 'measure'; from: number; to: number }
  /** Report once the window's updates and acks are in, or at `by` (epoch ms) at the latest. */
  | { type: 'report'; by: number }
  | { type: 'close' };

/** What one node's clients saw (the one server's, outside a cluster). */
interface NodeReport {
  connected: number;
  delivered: number;
  late: number;
  latency: HistogramEntries;
}

export interface WorkerReport {
  connected: number;
  /** Clients whose connection closed or failed after connecting or while connecting. */
  lost: number;
  /** Updates received with `ts` in the window, over all clients. */
  delivered: number;
  /** Of those, how many arrived more than `lateAfterMs` after their `ts`. */
  late: number;
  /** Every distinct seq seen in the window (for the number of broadcasts). */
  seqs: number[];
  /** Clients that saw a seq go backwards or repeat. */
  outOfOrder: number;
  latency: HistogramEntries;
  buysSent: number;
  acksOk: number;
  acksRejected: number;
  ackLatency: HistogramEntries;
  /** The longest this worker's event loop was held up while measuring, in ms. */
  loopDelayMaxMs: number;
  /** The same counts split by node, indexed like the plan's `ports`. */
  nodes: NodeReport[];
}

/**
 * The node that the run's client number `client` connects to: clients go round robin over
 * the nodes, so every node gets the same share (give or take one) whatever the workers' shares.
 */
export function nodeOf(client: number, nodes: number): number {
  return client % nodes;
}

export type WorkerMessage =
  | { type: 'connected'; connected: number; failed: number; firstError?: string }
  | { type: 'report'; report: WorkerReport };
