/** The bench's pure parts (statistics, spreading clients, the SSE reader, settings, ratios, the
 * printed report); test/integration/bench.test.ts runs the rest end to end. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import type { ClusterResult } from '../../bench/cluster';
import { sseReader } from '../../bench/frames';
import { clusterRatios, medianRatios, ratios, type FanOutRatio } from '../../bench/report';
import { optionsFromEnv, printReport } from '../../bench/run';
import { shares, workerShares, type ScenarioResult } from '../../bench/scenario';
import { merge, record, summarize, type Histogram, type Summary } from '../../bench/stats';
import { nodeOf } from '../../bench/worker-protocol';

const histogramOf = (values: readonly number[]): Histogram => {
  const histogram: Histogram = new Map();
  for (const value of values) record(histogram, value);
  return histogram;
};
const hundred = Array.from({ length: 100 }, (_, i) => i + 1);

// Nearest rank: the smallest value with at least p % of the samples at or below it.
test.each<[string, number[], Partial<Summary>]>([
  ['1..100', [...hundred].reverse(), { count: 100, p50: 50, p90: 90, p99: 99, max: 100 }],
  ['99 × 1 and one outlier', [...Array<number>(99).fill(1), 1000], { p99: 1 }],
  ['98 × 1 and two outliers', [...Array<number>(98).fill(1), 1e3, 1e3], { p99: 1e3 }],
  ['0.01 ms buckets, a negative as 0', [1.234, 1.236, -0.5, 0.004], { p50: 0, max: 1.24 }],
  ['nothing', [], { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN }],
])('summarize %s', (_, values, expected) => {
  const figures = summarize(histogramOf(values));
  for (const [key, value] of Object.entries(expected))
    expect([key, figures[key as keyof Summary]]).toEqual([key, value && expect.closeTo(value, 9)]);
});

test('merging the workers’ entries (sent as JSON) gives the figures of one histogram', () => {
  const odd = histogramOf(hundred.filter((value) => value % 2 === 1));
  const even = histogramOf([...hundred.filter((value) => value % 2 === 0), 1]);
  const entries = JSON.parse(JSON.stringify([...even])) as [number, number][];
  expect(summarize(merge(odd, entries))).toEqual(summarize(histogramOf([...hundred, 1])));
});

test('shares differ by at most one, the larger first; a storm’s buyers get a worker; the clients of every worker together give each node an even share', () => {
  expect(shares(100, 7)).toEqual([15, 15, 14, 14, 14, 14, 14]);
  expect(shares(1, 2)).toEqual([1, 0]);
  expect(workerShares({ watchers: 5, buyers: 2, buysPerSecond: 40 }, 2)).toEqual([
    { watchers: 3, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 0 },
    { watchers: 2, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 3 },
    { watchers: 0, buyers: 2, buysPerSecond: 40, niceness: 0, firstClient: 5 },
  ]);
  for (const [total, workers, nodes] of [
    [1, 2, 2],
    [7, 2, 3],
    [1001, 4, 3],
    [30, 3, 2],
  ] as const) {
    const perNode = Array<number>(nodes).fill(0);
    for (const share of workerShares({ watchers: total, buyers: 0, buysPerSecond: 0 }, workers))
      for (let client = 0; client < share.watchers; client++)
        perNode[nodeOf(share.firstClient + client, nodes)]! += 1;
    // Numbering each worker's clients from 0 would put 2 clients on 2 workers on node 0.
    expect([total, workers, perNode]).toEqual([total, workers, shares(total, nodes)]);
  }
});

// A heartbeat, better-sse's greeting, a snapshot, an opening and an event cut off at the end.
const STREAM =
  ':\n\nretry:2000\n\nevent:update\nid:7\ndata:{"seq":7,"ts":1}\n\n\nevent: opening\ndata:{"a":\ndata: 2}\n\ndata:x\n\nevent:update\ndata:{';
test('the SSE reader gives each event whole, wherever the stream is cut', () => {
  const read = (chunks: string[]) => {
    const events: string[][] = [];
    const feed = sseReader((type, data) => events.push([type, data.toString()]));
    for (const chunk of chunks) feed(Buffer.from(chunk));
    return events;
  };
  const whole = read([STREAM]);
  expect(whole).toEqual([
    ['update', '{"seq":7,"ts":1}'],
    ['opening', '{"a":\n2}'],
    ['message', 'x'],
  ]);
  expect(read([...STREAM])).toEqual(whole);
  for (let cut = 0; cut <= STREAM.length; cut++)
    expect(read([STREAM.slice(0, cut), STREAM.slice(cut)])).toEqual(whole);
});

test('settings default when unset or blank, else read each variable, trimmed; "off" leaves a part out', () => {
  expect(optionsFromEnv({ BENCH_CLIENTS: '', BENCH_STORM: ' ' })).toEqual({
    ...{ clients: [1000, 5000, 10000], tickMs: [1000, 100], seconds: 20, warmupSeconds: 3 },
    ...{ workers: 2, servers: ['forkcast', 'sse', 'tutorial', 'raw'], cluster: [], startupRuns: 5 },
    ...{ storm: { watchers: 5000, buyers: 100, buysPerSecond: 2000 }, repeat: 1, pin: true },
    out: expect.stringMatching(/\/results\/\d{4}(-\d\d){2}T(\d\d-){3}\d{3}Z\.jsonl$/) as unknown,
  });
  const env = {
    ...{ BENCH_CLIENTS: '10, 20,30', TICK_MS: '250', BENCH_SECONDS: '5', BENCH_WARMUP: '0' },
    ...{ BENCH_WORKERS: '4', BENCH_PIN: '0', BENCH_SERVERS: ' raw, tutorial', BENCH_STARTUP: '0' },
    ...{ BENCH_REPEAT: '3' },
    ...{ BENCH_CLUSTER: '1, 2,3', BENCH_STORM: '300,10,50', BENCH_OUT: 'o.jsonl' },
  };
  expect(optionsFromEnv(env)).toMatchObject({
    ...{ clients: [10, 20, 30], tickMs: [250], seconds: 5, warmupSeconds: 0, workers: 4 },
    ...{ pin: false, servers: ['raw', 'tutorial'], startupRuns: 0, cluster: [1, 2, 3], repeat: 3 },
    ...{ storm: { watchers: 300, buyers: 10, buysPerSecond: 50 }, out: path.resolve('o.jsonl') },
  });
  const off = optionsFromEnv({ BENCH_CLIENTS: 'off', BENCH_CLUSTER: 'off', BENCH_STORM: 'off' });
  expect([off.clients, off.cluster, off.storm]).toEqual([[], [], null]);
  // Past 40,000 buys the prices would reach the largest double and buys be refused.
  expect(optionsFromEnv({ BENCH_SECONDS: '30', BENCH_STORM: 'off' }).seconds).toBe(30);
  expect(() => optionsFromEnv({ BENCH_SECONDS: '30' })).toThrow(
    'BENCH_STORM: 2000 buys/s for 30 s (BENCH_SECONDS) is 60000 buys, more than the 40000',
  );
});

const LIST = 'separated by commas';
test.each<[string, string, string]>([
  ['BENCH_WARMUP', '-1', `whole numbers ${LIST}`],
  ['BENCH_STARTUP', '1.5', `whole numbers ${LIST}`],
  ['BENCH_SECONDS', '20,30', 'one number'],
  ['BENCH_REPEAT', '0', `positive integers ${LIST}`],
  ['BENCH_CLIENTS', '10,abc', `positive integers ${LIST}`],
  ['TICK_MS', '1000,,100', `positive integers ${LIST}`],
  ['BENCH_STORM', '5000,100', '"watchers,buyers,buys per second" or "off"'],
  ['BENCH_SERVERS', 'forkcast,Raw', `"forkcast", "sse", "tutorial" or "raw", or several ${LIST}`],
  ['BENCH_PIN', 'yes', '0 or 1'],
])('settings refuse %s=%s, naming the variable', (name, value, expected) => {
  const message = `${name} must be ${expected}, got "${value}"`;
  expect(() => optionsFromEnv({ [name]: value })).toThrow(message);
});

const summary = (p50: number, p99: number): Summary => ({
  ...{ count: 1000, p50, p90: (p50 + p99) / 2, p99, max: p99 * 2 },
});

/** A finished run; only what the report reads needs to vary. */
function result(overrides: Partial<ScenarioResult> = {}): ScenarioResult {
  const clients = overrides.clients ?? 1000;
  return {
    ...{ name: 'fan-out', kind: 'forkcast', watchers: clients, buyers: 0, buysPerSecond: 0 },
    ...{ tickMs: 1000, clients, seconds: 20, broadcasts: 20, delivered: 20 * clients },
    ...{ deliveredPerSecond: clients, missed: 0, late: 0, outOfOrder: 0, lost: 0 },
    ...{ latencyMs: summary(1, 4), serverCpuPercent: 10, loadCpuPercent: 40, loadStallMs: 20 },
    ...{ serverAckWithin: null, cpuMicrosPerUpdate: 5, memoryPerConnectionKB: 10 },
    ...{ serverStartMs: 300, buysSent: 0, acksOk: 0, acksRejected: 0, acksPerSecond: 0 },
    ackLatencyMs: summary(NaN, NaN),
    ...overrides,
  };
}

/** A ratio row as kind, clients, tick, the tutorial's CPU ratio and the raw baseline's. */
const cells = ({ kind, clients, tickMs, tutorial, cpuPerUpdate }: FanOutRatio) =>
  `${kind} ${clients} ${tickMs} ${tutorial.cpuPerUpdate} ${cpuPerUpdate}`;

test('ratios pair each forkcast fan-out (Socket.IO or SSE) with the baselines of its clients and tick; with BENCH_REPEAT each round with its own, and the medians sum them up', () => {
  const run = (kind: ScenarioResult['kind'], clients: number, tickMs: number, cpu: number) =>
    result({ kind, clients, tickMs, cpuMicrosPerUpdate: cpu });
  const pairs = ratios([
    // The storm runs sit first, so a missing filter would pair them instead of the fan-out.
    ...(['raw', 'forkcast', 'tutorial'] as const).map((kind) =>
      result({ name: 'buy-storm', kind, clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 100 }),
    ),
    ...[run('raw', 5000, 100, 1), run('tutorial', 1000, 100, 16), run('raw', 5000, 1000, 2)],
    ...[run('tutorial', 5000, 100, 4), run('raw', 1000, 100, 4), run('tutorial', 5000, 1000, 2)],
    ...[run('forkcast', 1000, 100, 8), run('forkcast', 5000, 1000, 8)],
    ...[run('forkcast', 5000, 100, 8), run('sse', 5000, 100, 2)],
    // Measured with one server only: no row.
    ...[run('forkcast', 2000, 1000, 8), run('raw', 3000, 1000, 8)],
  ]);
  expect(pairs.map(cells)).toEqual([
    ...['forkcast 1000 100 0.5 2', 'forkcast 5000 1000 4 4', 'forkcast 5000 100 2 8'],
    'sse 5000 100 0.5 2',
  ]);

  const round = (...cpu: number[]) =>
    (['forkcast', 'sse', 'tutorial', 'raw'] as const).map((k, i) => run(k, 5000, 1000, cpu[i]!));
  const found = ratios([...round(8, 20, 4, 2), ...round(6, 12, 6, 3), ...round(9, 12, 3, 3)]);
  // Round by round, forkcast's row and then the SSE clients'.
  expect(found.map(cells)).toEqual([
    ...['forkcast 5000 1000 2 4', 'sse 5000 1000 5 10'],
    ...['forkcast 5000 1000 1 2', 'sse 5000 1000 2 4'],
    ...['forkcast 5000 1000 3 3', 'sse 5000 1000 4 4'],
  ]);
  // One median per server: the SSE rounds are not forkcast's.
  expect(medianRatios(found).map(cells)).toEqual(['forkcast 5000 1000 2 3', 'sse 5000 1000 4 4']);
});

test('printReport writes the fan-out, ratio, cluster, storm and start-up tables', () => {
  const fanOut = (kind: ScenarioResult['kind'], ...[cpu, p50, p99, kb, rate]: number[]) =>
    result({
      ...{ kind, cpuMicrosPerUpdate: cpu, latencyMs: summary(p50!, p99!) },
      ...{ memoryPerConnectionKB: kb, deliveredPerSecond: rate },
    });
  const results = [
    fanOut('forkcast', 6, 3, 10, 12, 900),
    fanOut('tutorial', 4, 6, 5, 16, 600),
    fanOut('raw', 2, 1.5, 4, 3, 1000),
    fanOut('sse', 3, 2.25, 6, 8, 1000),
    // Beside raw only, and without latencies: '–' where there is no figure.
    result({ kind: 'raw', clients: 10000, tickMs: 100, latencyMs: summary(NaN, NaN) }),
    result({ clients: 10000, tickMs: 100 }),
    result({
      ...{ name: 'buy-storm', watchers: 5000, buyers: 100, clients: 5100, tickMs: 100 },
      ...{ buysSent: 40_000, acksOk: 39_990, acksRejected: 4, acksPerSecond: 1999.7 },
      ...{ ackLatencyMs: summary(1.234, 20), serverAckWithin: { within10ms: 0.9, within25ms: 1 } },
    }),
  ];
  type Role = 'leader' | 'follower';
  const node = (node: number, role: Role, missed: number, ...latency: [number, number]) => {
    const same = { clients: 500, delivered: 10_000, deliveredPerSecond: 500, late: 0 };
    const latencyMs = summary(...latency);
    return { ...same, node, role, missed, latencyMs, cpuPercent: 12.5, memoryPerConnectionKB: 18 };
  };
  const clusterRun = (overrides: Partial<ClusterResult>): ClusterResult => ({
    ...result({ clients: overrides.clients ?? 1000 }),
    ...{ kind: 'cluster', buyers: 0, buysPerSecond: 0, nodes: 2, redisCpuPercent: 1.5 },
    ...{ redisCpuMicrosPerUpdate: 0.75, leaderElectedMs: 900, leader: 0, leaderAfter: 0 },
    ...{ name: 'fan-out', perNode: [], ...overrides },
  });
  const perNode = [node(0, 'follower', 3, 5, 20), node(1, 'leader', 0, 4, 10)];
  const cluster = [
    clusterRun({ leader: 1, cpuMicrosPerUpdate: 9, perNode }),
    clusterRun({ nodes: 3, clients: 10000, tickMs: 100, redisCpuPercent: 2.25 }),
  ];
  const bundleGzipBytes = { 'main.js': 1234 };
  const startup = { childForkMs: [40, 35.4, 90], serverStartMs: [300], bundleGzipBytes };
  const report = {
    ...{ results, ratios: ratios(results), medians: [], cluster, startup },
    ...{ clusterRatios: clusterRatios(results, cluster), clusterPinning: 'not pinned' },
  };
  const options = optionsFromEnv({ BENCH_SECONDS: '20', BENCH_OUT: 'results/run.jsonl' });
  const lines: string[] = [];
  printReport(report, options, (line) => lines.push(line));
  // The tables as they go into BENCHMARKS.md; a change of format shows as a diff of this file.
  const golden = readFileSync(path.join(__dirname, 'bench-report.golden.txt'), 'utf8');
  expect(`${lines.join('\n')}\n`).toBe(golden);
});
