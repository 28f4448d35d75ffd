/** One app's Prometheus instruments, in its own registry so apps in one process (tests) count
 * apart. Labels come from fixed unions, never from client input, so the series count is fixed. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

import type { ClientToServerEvents } from '../protocol/events';

/** The `op` label: the three ops of the contract, and every other event name as one value. */
export type OpName = keyof ClientToServerEvents | 'unknown';

/** invalid: bad args or event; forbidden: watch-only; unavailable: no ticker; internal: a bug. */
const REASONS = ['invalid', 'rate_limited', 'forbidden', 'unavailable', 'internal'] as const;
export type RejectReason = (typeof REASONS)[number];
const TRANSPORTS = ['socket', 'http'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export type ForkcastMetrics = ReturnType<typeof createMetrics>;

/** Shared by all apps: collectDefaultMetrics's monitors never stop, so one per app would leak. */
let processMetrics: Registry | undefined;

export function createMetrics(countClients: () => number = () => 0) {
  const registers = [new Registry()];
  const help = 'Sockets connected to the default namespace.';
  const clients = new Gauge({ name: 'forkcast_connected_clients', help, registers });
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    new Counter({ name, help, labelNames, registers });
  const updates = counter('forkcast_updates_broadcast_total', 'Price updates broadcast.');
  const deliveries = counter('forkcast_update_deliveries_total', 'Updates sent, one per socket.');
  const restarts = counter('forkcast_ticker_restarts_total', 'Replacement ticker children forked.');
  const ops = counter(
    'forkcast_ops_total',
    'Client ops answered, by op, transport and result; refusals also by reason.',
    ['op', 'result', 'reason', 'transport'],
  );
  const ackSeconds = new Histogram({
    name: 'forkcast_op_ack_seconds',
    help: 'Seconds from receiving an op to acknowledging or refusing it.',
    labelNames: ['op', 'transport'] as const,
    // From an unknown event refused at once to an op timing out.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  const opLabels = (op: OpName, outcome: 'ok' | RejectReason, transport: Transport) =>
    outcome === 'ok'
      ? { op, transport, result: 'ok' }
      : { op, transport, result: 'rejected', reason: outcome };

  // Every series starts at 0, so rate() and alerts see the first refusal (unknown: only invalid).
  for (const transport of TRANSPORTS)
    for (const op of ['start', 'stop', 'buy', 'unknown'] as const) {
      ackSeconds.zero({ op, transport });
      const outcomes = op === 'unknown' ? (['invalid'] as const) : (['ok', ...REASONS] as const);
      for (const outcome of outcomes) ops.inc(opLabels(op, outcome, transport), 0);
    }
  // Loop delay sampled every 100 ms, not 10 (the default): that was half an idle server's CPU.
  const defaults = { prefix: 'forkcast_', eventLoopMonitoringPrecision: 100 };
  if (!processMetrics)
    collectDefaultMetrics({ register: (processMetrics = new Registry()), ...defaults });
  const exposed = Registry.merge([...registers, processMetrics]);

  return {
    broadcast(sockets: number): void {
      updates.inc();
      deliveries.inc(sockets);
    },
    answered(op: OpName, outcome: 'ok' | RejectReason, transport: Transport, seconds: number) {
      ops.inc(opLabels(op, outcome, transport));
      ackSeconds.observe({ op, transport }, seconds);
    },
    tickerRestarted: (): void => restarts.inc(),
    /** Prometheus text format: this app's instruments, then the process's. */
    contentType: exposed.contentType,
    scrape: (): Promise<string> => {
      clients.set(countClients());
      return exposed.metrics();
    },
  };
}
