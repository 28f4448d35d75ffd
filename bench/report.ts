/** Turns scenario results into ratios against the raw baseline and a table for the terminal. */
import type { ClusterResult } from './cluster';
import type { RunFigures, ScenarioResult } from './scenario';

export interface Ratio {
  clients: number;
  tickMs: number;
  /** forkcast ÷ raw for each figure; below 1 means forkcast did better. */
  cpuPerUpdate: number;
  p50: number;
  p99: number;
  memoryPerConnection: number;
  deliveredPerSecond: number;
}

/** A cluster of `nodes` ÷ the raw baseline. */
export interface ClusterRatio extends Ratio {
  kind: 'cluster';
  nodes: number;
}

/** The raw fan-out run with these clients and tick, if there was one. */
function rawRun(
  results: readonly ScenarioResult[],
  ours: { clients: number; tickMs: number },
): ScenarioResult | undefined {
  return results.find(
    (other) =>
      other.name === 'fan-out' &&
      other.kind === 'raw' &&
      other.clients === ours.clients &&
      other.tickMs === ours.tickMs,
  );
}

function divide(ours: RunFigures & { tickMs: number }, raw: RunFigures): Ratio {
  return {
    clients: ours.clients,
    tickMs: ours.tickMs,
    cpuPerUpdate: ours.cpuMicrosPerUpdate / raw.cpuMicrosPerUpdate,
    p50: ours.latencyMs.p50 / raw.latencyMs.p50,
    p99: ours.latencyMs.p99 / raw.latencyMs.p99,
    memoryPerConnection: ours.memoryPerConnectionKB / raw.memoryPerConnectionKB,
    deliveredPerSecond: ours.deliveredPerSecond / raw.deliveredPerSecond,
  };
}

/** forkcast ÷ raw for every fan-out run measured with both servers. */
export function ratios(results: readonly ScenarioResult[]): Ratio[] {
  return results
    .filter((result) => result.name === 'fan-out' && result.kind === 'forkcast')
    .flatMap((ours) => {
      const raw = rawRun(results, ours);
      return raw ? [divide(ours, raw)] : [];
    });
}

/** cluster ÷ raw for every cluster run with a raw run of the same clients and tick. */
export function clusterRatios(
  results: readonly ScenarioResult[],
  cluster: readonly ClusterResult[],
): ClusterRatio[] {
  return cluster.flatMap((ours) => {
    const raw = rawRun(results, ours);
    return raw ? [{ kind: 'cluster' as const, nodes: ours.nodes, ...divide(ours, raw) }] : [];
  });
}

const fixed = (value: number, digits: number): string =>
  Number.isFinite(value) ? value.toFixed(digits) : '–';
const percent = (share: number | undefined): string =>
  share === undefined ? '–' : `${(share * 100).toFixed(1)} %`;
const count = (value: number): string =>
  Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–';

/** A Markdown table (readable as is in a terminal, and pasted as is into BENCHMARKS.md). */
export function table(headers: string[], rows: string[][]): string {
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

const RATIO_HEADERS = ['clients', 'rate', 'CPU/update', 'p50', 'p99', 'KB/conn', 'updates/s'];

/** One ratio row's cells, under RATIO_HEADERS. */
function ratioCells(ratio: Ratio): string[] {
  return [
    count(ratio.clients),
    `${fixed(1000 / ratio.tickMs, 0)} Hz`,
    `${fixed(ratio.cpuPerUpdate, 2)}×`,
    `${fixed(ratio.p50, 2)}×`,
    `${fixed(ratio.p99, 2)}×`,
    `${fixed(ratio.memoryPerConnection, 2)}×`,
    `${fixed(ratio.deliveredPerSecond, 2)}×`,
  ];
}

export function ratioTable(list: readonly Ratio[]): string {
  return table(RATIO_HEADERS, list.map(ratioCells));
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
    ['nodes', ...RATIO_HEADERS],
    list.map((ratio) => [String(ratio.nodes), ...ratioCells(ratio)]),
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
