/** Turns scenario results into ratios against the baselines and tables for the terminal. */
import type { ClusterResult } from './cluster';
import type { RunFigures, ScenarioResult } from './scenario';
import { median } from './stats';
import type { ServerKind } from './worker-protocol';

/**
 * One run ÷ a baseline's run for each figure; below 1 means the run did better. NaN (a '–' in
 * the tables, null in the JSON lines) where the baseline was not measured.
 */
interface Quotients {
  cpuPerUpdate: number;
  p50: number;
  p99: number;
  memoryPerConnection: number;
  deliveredPerSecond: number;
}

/** forkcast (or a cluster) ÷ the raw baseline, for one client count and tick. */
interface Ratio extends Quotients {
  clients: number;
  tickMs: number;
}

/**
 * A fan-out row: forkcast (read over Socket.IO, or over SSE) ÷ raw in the figures of its own
 * (as in the results recorded before the tutorial baseline existed), and forkcast ÷ the
 * tutorial server beside them.
 */
export interface FanOutRatio extends Ratio {
  kind: 'forkcast' | 'sse';
  tutorial: Quotients;
}

/** A cluster of `nodes` ÷ the raw baseline. */
export interface ClusterRatio extends Ratio {
  kind: 'cluster';
  nodes: number;
}

/**
 * The baseline's fan-out run with these clients and tick, if there was one; with BENCH_REPEAT,
 * the one of the same round (the nth run of these clients and tick pairs with the nth).
 */
function baselineRun(
  results: readonly ScenarioResult[],
  kind: ServerKind,
  ours: { clients: number; tickMs: number },
  round = 0,
): ScenarioResult | undefined {
  return results.filter((other) => other.kind === kind && sameRow(other, ours))[round];
}

const sameRow = (
  run: { name?: string; clients: number; tickMs: number },
  row: { clients: number; tickMs: number },
): boolean =>
  (run.name ?? 'fan-out') === 'fan-out' && run.clients === row.clients && run.tickMs === row.tickMs;

function divide(ours: RunFigures, base: RunFigures | undefined): Quotients {
  const by = (figure: (run: RunFigures) => number): number =>
    base ? figure(ours) / figure(base) : Number.NaN;
  return {
    cpuPerUpdate: by((run) => run.cpuMicrosPerUpdate),
    p50: by((run) => run.latencyMs.p50),
    p99: by((run) => run.latencyMs.p99),
    memoryPerConnection: by((run) => run.memoryPerConnectionKB),
    deliveredPerSecond: by((run) => run.deliveredPerSecond),
  };
}

const isOurs = (kind: string): kind is FanOutRatio['kind'] => kind === 'forkcast' || kind === 'sse';

/** forkcast ÷ each baseline for every fan-out run measured beside at least one of them. */
export function ratios(results: readonly ScenarioResult[]): FanOutRatio[] {
  return results.flatMap((run) => {
    const { kind, name, clients, tickMs } = run;
    if (!isOurs(kind) || name !== 'fan-out') return [];
    const round = results
      .filter((other) => other.kind === kind && sameRow(other, run))
      .indexOf(run);
    const raw = baselineRun(results, 'raw', run, round);
    const tutorial = baselineRun(results, 'tutorial', run, round);
    if (!raw && !tutorial) return [];
    return [{ kind, clients, tickMs, ...divide(run, raw), tutorial: divide(run, tutorial) }];
  });
}

/**
 * Each figure's median over the rounds of a row (BENCH_REPEAT): at 1 Hz one run's ratio
 * spreads by ±30 % on a small machine, so one round decides nothing.
 */
export function medianRatios(list: readonly FanOutRatio[]): FanOutRatio[] {
  const same = (a: FanOutRatio, b: FanOutRatio): boolean => a.kind === b.kind && sameRow(a, b);
  const rows = list.filter((ratio, i) => list.findIndex((other) => same(other, ratio)) === i);
  return rows.map((row) => {
    const rounds = list.filter((ratio) => same(ratio, row));
    const of = (pick: (ratio: FanOutRatio) => Quotients): Quotients => {
      const each = (key: keyof Quotients): number => median(rounds.map((r) => pick(r)[key]));
      return {
        cpuPerUpdate: each('cpuPerUpdate'),
        p50: each('p50'),
        p99: each('p99'),
        memoryPerConnection: each('memoryPerConnection'),
        deliveredPerSecond: each('deliveredPerSecond'),
      };
    };
    const { kind, clients, tickMs } = row;
    return { kind, clients, tickMs, ...of((r) => r), tutorial: of((r) => r.tutorial) };
  });
}

/** cluster ÷ raw for every cluster run with a raw run of the same clients and tick. */
export function clusterRatios(
  results: readonly ScenarioResult[],
  cluster: readonly ClusterResult[],
): ClusterRatio[] {
  return cluster.flatMap((ours) => {
    const raw = baselineRun(results, 'raw', ours);
    const { nodes, clients, tickMs } = ours;
    return raw ? [{ kind: 'cluster' as const, nodes, clients, tickMs, ...divide(ours, raw) }] : [];
  });
}

const fixed = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toFixed(digits) : '–';
const percent = (share: number | undefined): string =>
  share === undefined ? '–' : `${(share * 100).toFixed(1)} %`;
const count = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';

/** A Markdown table (readable as is in a terminal, and pasted as is into BENCHMARKS.md). */
function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]): string =>
    `| ${cells.map((cell, i) => cell.padStart(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((width) => '-'.repeat(width + 1) + ':').join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

export function fanOutTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((result) => result.name === 'fan-out')
    .map((result) => [
      result.kind,
      count(result.clients),
      `${fixed(1000 / result.tickMs, 0)} Hz`,
      count(result.deliveredPerSecond),
      count(result.missed),
      count(result.late),
      fixed(result.latencyMs.p50, 2),
      fixed(result.latencyMs.p90, 2),
      fixed(result.latencyMs.p99, 2),
      fixed(result.latencyMs.max, 2),
      fixed(result.serverCpuPercent, 1),
      fixed(result.loadCpuPercent, 0),
      fixed(result.cpuMicrosPerUpdate, 2),
      fixed(result.memoryPerConnectionKB, 1),
    ]);
  return table(
    [
      'server',
      'clients',
      'rate',
      'updates/s',
      'missed',
      'late',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'CPU %',
      'load CPU %',
      'CPU µs/update',
      'KB/conn',
    ],
    rows,
  );
}

const QUOTIENT_HEADERS = ['CPU/update', 'p50', 'p99', 'KB/conn', 'updates/s'];

/** A ratio row's client count and rate, under 'clients' and 'rate'. */
function runCells(ratio: Ratio): string[] {
  return [count(ratio.clients), `${fixed(1000 / ratio.tickMs, 0)} Hz`];
}

/** Quotients' cells, under QUOTIENT_HEADERS. */
function quotientCells(quotients: Quotients): string[] {
  return [
    `${fixed(quotients.cpuPerUpdate, 2)}×`,
    `${fixed(quotients.p50, 2)}×`,
    `${fixed(quotients.p99, 2)}×`,
    `${fixed(quotients.memoryPerConnection, 2)}×`,
    `${fixed(quotients.deliveredPerSecond, 2)}×`,
  ];
}

/**
 * forkcast (or its SSE clients' run) ÷ the tutorial server, then ÷ raw, in two groups of
 * columns; Markdown has no header over a group, so each group's first header names its baseline.
 */
export function ratioTable(list: readonly FanOutRatio[]): string {
  const group = (baseline: string): string[] =>
    QUOTIENT_HEADERS.map((header, i) => (i === 0 ? `÷ ${baseline}: ${header}` : header));
  return table(
    ['server', 'clients', 'rate', ...group('tutorial'), ...group('raw')],
    list.map((ratio) => [
      ratio.kind,
      ...runCells(ratio),
      ...quotientCells(ratio.tutorial),
      ...quotientCells(ratio),
    ]),
  );
}

export function stormTable(results: readonly ScenarioResult[]): string {
  const rows = results
    .filter((result) => result.name === 'buy-storm')
    .map((result) => [
      count(result.watchers),
      count(result.buyers),
      count(result.buysSent),
      count(result.acksOk),
      count(result.acksRejected),
      count(result.buysSent - result.acksOk - result.acksRejected),
      count(result.acksPerSecond),
      fixed(result.ackLatencyMs.p50, 2),
      fixed(result.ackLatencyMs.p99, 2),
      fixed(result.ackLatencyMs.max, 2),
      percent(result.serverAckWithin?.within10ms),
      percent(result.serverAckWithin?.within25ms),
      count(result.deliveredPerSecond),
      count(result.missed),
      fixed(result.latencyMs.p50, 2),
      fixed(result.latencyMs.p99, 2),
      fixed(result.serverCpuPercent, 1),
      fixed(result.loadCpuPercent, 0),
    ]);
  return table(
    [
      'watchers',
      'buyers',
      'buys sent',
      'acked ok',
      'refused',
      'unanswered',
      'acks/s',
      'ack p50 ms',
      'ack p99 ms',
      'ack max ms',
      'server ≤10 ms',
      'server ≤25 ms',
      'updates/s',
      'missed',
      'update p50 ms',
      'update p99 ms',
      'CPU %',
      'load CPU %',
    ],
    rows,
  );
}

/**
 * Each cluster run beside the single-server runs of the same clients and tick (raw, and
 * forkcast without Redis, where measured). CPU and µs/update of a cluster count every node
 * and Redis; the Redis columns are its part of them.
 */
export function clusterTable(
  results: readonly ScenarioResult[],
  cluster: readonly ClusterResult[],
): string {
  const keys = [...new Set(cluster.map((run) => `${run.tickMs} ${run.clients}`))];
  const rows = keys.flatMap((key) => {
    const same = (run: { tickMs: number; clients: number }): boolean =>
      `${run.tickMs} ${run.clients}` === key;
    const single = results
      .filter((run) => run.name === 'fan-out' && same(run))
      .map((run) => clusterRow(run.kind, '1', run, null));
    const clustered = cluster
      .filter(same)
      .map((run) => clusterRow('cluster', String(run.nodes), run, run));
    return [...single, ...clustered];
  });
  return table(
    [
      'server',
      'nodes',
      'clients',
      'rate',
      'updates/s',
      'missed',
      'late',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'CPU %',
      'Redis CPU %',
      'load CPU %',
      'CPU µs/update',
      'Redis µs/update',
      'KB/conn',
    ],
    rows,
  );
}

function clusterRow(
  server: string,
  nodes: string,
  run: RunFigures & { tickMs: number },
  clustered: ClusterResult | null,
): string[] {
  return [
    server,
    nodes,
    count(run.clients),
    `${fixed(1000 / run.tickMs, 0)} Hz`,
    count(run.deliveredPerSecond),
    count(run.missed),
    count(run.late),
    fixed(run.latencyMs.p50, 2),
    fixed(run.latencyMs.p90, 2),
    fixed(run.latencyMs.p99, 2),
    fixed(run.latencyMs.max, 2),
    fixed(run.serverCpuPercent, 1),
    clustered ? fixed(clustered.redisCpuPercent, 1) : '–',
    fixed(run.loadCpuPercent, 0),
    fixed(run.cpuMicrosPerUpdate, 2),
    clustered ? fixed(clustered.redisCpuMicrosPerUpdate, 2) : '–',
    fixed(run.memoryPerConnectionKB, 1),
  ];
}

export function clusterRatioTable(list: readonly ClusterRatio[]): string {
  return table(
    ['nodes', 'clients', 'rate', ...QUOTIENT_HEADERS],
    list.map((ratio) => [String(ratio.nodes), ...runCells(ratio), ...quotientCells(ratio)]),
  );
}

/** Every node of every cluster run: did each deliver every update, and how fast. */
export function clusterNodeTable(cluster: readonly ClusterResult[]): string {
  return table(
    [
      'clients',
      'rate',
      'nodes',
      'node',
      'role',
      'its clients',
      'updates/s',
      'missed',
      'late',
      'p50 ms',
      'p99 ms',
      'max ms',
      'CPU %',
      'KB/conn',
    ],
    cluster.flatMap((run) =>
      run.perNode.map((node) => [
        count(run.clients),
        `${fixed(1000 / run.tickMs, 0)} Hz`,
        String(run.nodes),
        String(node.node),
        node.role,
        count(node.clients),
        count(node.deliveredPerSecond),
        count(node.missed),
        count(node.late),
        fixed(node.latencyMs.p50, 2),
        fixed(node.latencyMs.p99, 2),
        fixed(node.latencyMs.max, 2),
        fixed(node.cpuPercent, 1),
        fixed(node.memoryPerConnectionKB, 1),
      ]),
    ),
  );
}
