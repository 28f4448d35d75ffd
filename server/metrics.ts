/** One app's Prometheus instruments, in its own registry so apps in one process (tests) count
 * apart. Labels come from fixed unions, never from client input, so the series count is fixed. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const PREFIX = 'forkcast_';

/** The `op` label: the three ops of the contract, and every other event name as one value. */
export type OpName = 'start' | 'stop' | 'buy' | 'unknown';

/** `invalid`: bad arguments or unknown event; `forbidden`: watch-only connection; `unavailable`:
 * ticker restarting, shutting down or silent; `internal`: a bug in the handler. */
export type RejectReason = 'invalid' | 'rate_limited' | 'forbidden' | 'unavailable' | 'internal';

type OpOutcome = 'ok' | RejectReason;

const OPS: readonly OpName[] = ['start', 'stop', 'buy', 'unknown'];
const REASONS: readonly RejectReason[] = [
  'invalid',
  'rate_limited',
  'forbidden',
  'unavailable',
  'internal',
];

/** From an unknown event refused at once to an op timing out at 5 s. */
const ACK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** What the realtime module records; the hot path is one pre-labelled increment per call. */
export interface RealtimeMetrics {
  /** Where the connected-clients gauge reads its value, once per scrape. */
  readClientsFrom(count: () => number): void;
  /** One `update` broadcast, which went to `sockets` connected sockets. */
  broadcast(sockets: number): void;
  /** An op was answered (acknowledged, or refused) `seconds` after it arrived. */
  answered(op: OpName, outcome: OpOutcome, seconds: number): void;
}

export interface ForkcastMetrics {
  /** This app's own instruments, and only those. */
  readonly registry: Registry;
  readonly realtime: RealtimeMetrics;
  /** A new ticker child was forked to replace one that died. */
  tickerRestarted(): void;
  /** The Content-Type of what scrape() returns (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The text for GET /metrics: this app's instruments, then the process's. */
  scrape(): Promise<string>;
}

export function createMetrics(): ForkcastMetrics {
  const registry = new Registry();
  const registers = [registry];
  let countClients = (): number => 0;

  new Gauge({
    name: `${PREFIX}connected_clients`,
    help: 'Sockets connected to the default namespace.',
    registers,
    collect() {
      this.set(countClients());
    },
  });
  const updates = new Counter({
    name: `${PREFIX}updates_broadcast_total`,
    help: 'Price updates broadcast to all connected sockets.',
    registers,
  });
  const deliveries = new Counter({
    name: `${PREFIX}update_deliveries_total`,
    help: 'Updates sent to a socket: each broadcast adds the number of sockets it went to.',
    registers,
  });
  const ops = new Counter({
    name: `${PREFIX}ops_total`,
    help: 'Client ops answered, by op and result; refusals also by reason.',
    labelNames: ['op', 'result', 'reason'] as const,
    registers,
  });
  const ackSeconds = new Histogram({
    name: `${PREFIX}op_ack_seconds`,
    help: 'Seconds from receiving an op to acknowledging or refusing it.',
    labelNames: ['op'] as const,
    buckets: ACK_BUCKETS,
    registers,
  });
  const restarts = new Counter({
    name: `${PREFIX}ticker_restarts_total`,
    help: 'Ticker children forked to replace one that exited (every fork after the first).',
    registers,
  });

  const opChildren = new Map<string, Counter.Internal>();
  const opCounter = (op: OpName, outcome: OpOutcome): Counter.Internal => {
    const key = `${op}:${outcome}`;
    let child = opChildren.get(key);
    if (!child) {
      child = ops.labels(
        outcome === 'ok' ? { op, result: 'ok' } : { op, result: 'rejected', reason: outcome },
      );
      opChildren.set(key, child);
    }
    return child;
  };
  const ackTimers = Object.fromEntries(
    OPS.map((op) => [op, ackSeconds.labels({ op })] as const),
  ) as Record<OpName, Histogram.Internal<'op'>>;
  // Every possible series starts at 0, so rate() and alerts see the first refusal.
  // An unknown event can only be refused as invalid.
  for (const op of OPS) {
    ackSeconds.zero({ op });
    const outcomes: readonly OpOutcome[] = op === 'unknown' ? ['invalid'] : ['ok', ...REASONS];
    for (const outcome of outcomes) opCounter(op, outcome).inc(0);
  }

  const exposed = Registry.merge([registry, processRegistry()]);

  return {
    registry,
    realtime: {
      readClientsFrom(count) {
        countClients = count;
      },
      broadcast(sockets) {
        updates.inc();
        deliveries.inc(sockets);
      },
      answered(op, outcome, seconds) {
        opCounter(op, outcome).inc();
        ackTimers[op].observe(seconds);
      },
    },
    tickerRestarted() {
      restarts.inc();
    },
    contentType: exposed.contentType,
    scrape: () => exposed.metrics(),
  };
}

let shared: Registry | undefined;

/** Process metrics, collected once per process and shared by every app: per app they would leak,
 * since collectDefaultMetrics starts monitors that are never stopped and pin their registry. */
function processRegistry(): Registry {
  if (!shared) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix: PREFIX });
  }
  return shared;
}
