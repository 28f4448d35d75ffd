/** Turns scenario results into ratios against the raw baseline and a table for the terminal. */
import type { ScenarioResult } from './scenario';

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

/** forkcast ÷ raw for every fan-out run measured with both servers. */
export function ratios(results: readonly ScenarioResult[]): Ratio[] {
  const fanOut = results.filter((result) => result.name === 'fan-out');
  return fanOut
    .filter((result) => result.kind === 'forkcast')
    .flatMap((ours) => {
      const raw = fanOut.find(
        (other) =>
          other.kind === 'raw' && other.clients === ours.clients && other.tickMs === ours.tickMs,
      );
      if (!raw) return [];
      return [
        {
          clients: ours.clients,
          tickMs: ours.tickMs,
          cpuPerUpdate: ours.cpuMicrosPerUpdate / raw.cpuMicrosPerUpdate,
          p50: ours.latencyMs.p50 / raw.latencyMs.p50,
          p99: ours.latencyMs.p99 / raw.latencyMs.p99,
          memoryPerConnection: ours.memoryPerConnectionKB / raw.memoryPerConnectionKB,
          deliveredPerSecond: ours.deliveredPerSecond / raw.deliveredPerSecond,
        },
      ];
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

export function ratioTable(list: readonly Ratio[]): string {
  return table(
    ['clients', 'rate', 'CPU/update', 'p50', 'p99', 'KB/conn', 'updates/s'],
    list.map((ratio) => [
      count(ratio.clients),
      `${fixed(1000 / ratio.tickMs, 0)} Hz`,
      `${fixed(ratio.cpuPerUpdate, 2)}×`,
      `${fixed(ratio.p50, 2)}×`,
      `${fixed(ratio.p99, 2)}×`,
      `${fixed(ratio.memoryPerConnection, 2)}×`,
      `${fixed(ratio.deliveredPerSecond, 2)}×`,
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
