/**
 * The bench's pure parts: frame parsing, statistics, ratios, settings, how clients are spread,
 * the cluster summary and the printed report. test/integration/bench.test.ts is the smoke run.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { leaderOf, summarizeCluster, type ClusterResult } from '../../bench/cluster';
import { isPing, isSocketIoUpdate, parseAck, seqAndTs } from '../../bench/frames';
import { parseRss, parseStat } from '../../bench/proc';
import { clusterRatios, ratios } from '../../bench/report';
import { optionsFromEnv, printReport, runBench } from '../../bench/run';
import {
  shares,
  stormState,
  workerShares,
  type Measured,
  type ScenarioResult,
} from '../../bench/scenario';
import { portIn } from '../../bench/servers';
import { merge, record, summarize, type Histogram, type Summary } from '../../bench/stats';
import { nodeOf, type NodeReport, type WorkerReport } from '../../bench/worker-protocol';

const histogramOf = (values: readonly number[]): Histogram => {
  const histogram: Histogram = new Map();
  for (const value of values) record(histogram, value);
  return histogram;
};

describe('frames', () => {
  const UPDATE = { stocks: [{ name: 'Apple', price: 14.5 }], running: true, seq: 123, ts: 1764 };
  const event = (name: string, payload: unknown) => `42${JSON.stringify([name, payload])}`;
  const ack = (id: number, result: unknown) => `43${id}${JSON.stringify([result])}`;

  // Each frame a client sees is the ping, an update, an ack (its id and ok) or none of them.
  test.each<[string, 'ping' | 'update' | { id: number; ok: boolean } | null]>([
    ['2', 'ping'],
    ['', null],
    [event('update', UPDATE), 'update'],
    [event('status', { message: 'started', running: true }), null],
    ['42["update",', null],
    [JSON.stringify(UPDATE), null],
    [ack(12, { ok: true }), { id: 12, ok: true }],
    [ack(3, { ok: false, error: '"ok":true' }), { id: 3, ok: false }],
    ['431', null],
    ['43[{"ok":true}]', null],
  ])('%j is %j', (frame, kind) => {
    const buffer = Buffer.from(frame);
    expect([isPing(buffer), isSocketIoUpdate(buffer), parseAck(buffer)]).toEqual([
      kind === 'ping',
      kind === 'update',
      typeof kind === 'object' ? kind : null,
    ]);
  });

  test('seqAndTs reads seq and ts in any key order, NaN when missing', () => {
    const reordered = { ts: 999, seq: 7, running: false, stocks: UPDATE.stocks };
    expect(seqAndTs(Buffer.from(event('update', UPDATE)))).toEqual({ seq: 123, ts: 1764 });
    expect(seqAndTs(Buffer.from(event('update', reordered)))).toEqual({ seq: 7, ts: 999 });
    expect(seqAndTs(Buffer.from('{"stocks":[]}'))).toEqual({ seq: NaN, ts: NaN });
  });
});

describe('stats', () => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

  test('nearest-rank percentiles in 0.01 ms buckets, negatives as 0, empty as NaN', () => {
    expect(summarize(histogramOf([...oneToHundred].reverse()))).toEqual({
      count: 100,
      p50: expect.closeTo(50, 9),
      p90: expect.closeTo(90, 9),
      p99: expect.closeTo(99, 9),
      max: expect.closeTo(100, 9),
    });
    // p99 is the smallest value with at least 99 % of samples at or below it.
    expect(summarize(histogramOf([...Array<number>(99).fill(1), 1000])).p99).toBeCloseTo(1, 9);
    expect(summarize(histogramOf([...Array<number>(98).fill(1), 1e3, 1e3])).p99).toBeCloseTo(1e3);
    expect([...histogramOf([1.234, 1.236, -0.5, 0.004]).entries()]).toEqual([
      [123, 1],
      [124, 1],
      [0, 2],
    ]);
    expect(summarize(new Map())).toEqual({ count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN });
  });

  test('merging the workers’ entries (sent as JSON) gives the figures of one histogram', () => {
    const odd = histogramOf(oneToHundred.filter((value) => value % 2 === 1));
    const even = histogramOf([...oneToHundred.filter((value) => value % 2 === 0), 1]);
    const entries = JSON.parse(JSON.stringify([...even])) as [number, number][];
    expect(summarize(merge(odd, entries))).toEqual(summarize(histogramOf([...oneToHundred, 1])));
  });
});

test('parseStat counts from the last ")" of the name; parseRss reads VmRSS in bytes', () => {
  // Fields 14 and 15 are utime and stime; distinct values catch an off-by-one.
  const fields = 'S 1 1 1 0 -1 4194560 2000 0 12 0 1234 567 89 10 20 0 3 0 21547 1051 412';
  expect(parseStat(`4242 (my (odd) server) 1 2) ${fields}\n`)).toEqual({ utime: 1234, stime: 567 });
  expect(() => parseStat('4242 (node) S 1 1')).toThrow(/^unexpected \/proc stat line/);
  expect(parseRss('Name:\tnode\nVmHWM:\t   99999 kB\nVmRSS:\t   19680 kB\n')).toBe(19680 * 1024);
  expect(() => parseRss('VmHWM:\t 99999 kB\n')).toThrow('no VmRSS line');
});

const summary = (p50: number, p99: number): Summary => ({
  count: 1000,
  p50,
  p90: (p50 + p99) / 2,
  p99,
  max: p99 * 2,
});

/** A finished run; only what the report reads needs to vary. */
function result(overrides: Partial<ScenarioResult> = {}): ScenarioResult {
  const clients = overrides.clients ?? 1000;
  return {
    name: 'fan-out',
    kind: 'forkcast',
    watchers: clients,
    buyers: 0,
    buysPerSecond: 0,
    tickMs: 1000,
    clients,
    seconds: 20,
    broadcasts: 20,
    delivered: 20 * clients,
    deliveredPerSecond: clients,
    missed: 0,
    late: 0,
    outOfOrder: 0,
    lost: 0,
    latencyMs: summary(1, 4),
    serverCpuPercent: 10,
    loadCpuPercent: 40,
    serverAckWithin: null,
    cpuMicrosPerUpdate: 5,
    memoryPerConnectionKB: 10,
    serverStartMs: 300,
    buysSent: 0,
    acksOk: 0,
    acksRejected: 0,
    acksPerSecond: 0,
    ackLatencyMs: summary(NaN, NaN),
    ...overrides,
  };
}

/** A fan-out run with the figures ratios divide: CPU/update, p50, p99, KB/conn, updates/s. */
const measured = (kind: ScenarioResult['kind'], ...[cpu, p50, p99, kb, rate]: number[]) =>
  result({
    kind,
    cpuMicrosPerUpdate: cpu,
    latencyMs: summary(p50!, p99!),
    memoryPerConnectionKB: kb,
    deliveredPerSecond: rate,
  });

describe('ratios', () => {
  // ÷ raw in the row's own figures, as the results recorded before the tutorial have them;
  // the quotients themselves are in the golden report below.
  test('pair each forkcast fan-out with the baselines of its clients and tick', () => {
    const run = (kind: ScenarioResult['kind'], clients: number, tickMs: number, cpu: number) =>
      result({ kind, clients, tickMs, cpuMicrosPerUpdate: cpu });
    const found = ratios([
      // The storm runs sit first, so a missing filter would pair them instead of the fan-out.
      ...(['raw', 'forkcast', 'tutorial'] as const).map((kind) =>
        result({ name: 'buy-storm', kind, clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 100 }),
      ),
      ...[run('raw', 5000, 100, 1), run('tutorial', 1000, 100, 16), run('raw', 5000, 1000, 2)],
      ...[run('tutorial', 5000, 100, 4), run('raw', 1000, 100, 4), run('tutorial', 5000, 1000, 2)],
      ...[run('forkcast', 1000, 100, 8), run('forkcast', 5000, 1000, 8)],
      run('forkcast', 5000, 100, 8),
      // Measured with one server only: no row.
      ...[run('forkcast', 2000, 1000, 8), run('raw', 3000, 1000, 8)],
    ]);
    expect(
      found.map((row) => [row.clients, row.tickMs, row.cpuPerUpdate, row.tutorial.cpuPerUpdate]),
    ).toEqual([
      [1000, 100, 2, 0.5],
      [5000, 1000, 4, 4],
      [5000, 100, 8, 2],
    ]);
  });
});

describe('spreading the clients', () => {
  test('shares sum to the total, differ by at most one, the larger first', () => {
    expect(shares(100, 7)).toEqual([15, 15, 14, 14, 14, 14, 14]);
    expect(shares(1, 2)).toEqual([1, 0]);
  });

  test('workerShares numbers the clients through the run; a storm’s buyers get a worker', () => {
    // After the watchers, which run at a lower priority.
    expect(workerShares({ watchers: 5, buyers: 2, buysPerSecond: 40 }, 2)).toEqual([
      { watchers: 3, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 0 },
      { watchers: 2, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 3 },
      { watchers: 0, buyers: 2, buysPerSecond: 40, niceness: 0, firstClient: 5 },
    ]);
  });

  test('every node gets an even share of the whole run, whatever the workers’ shares', () => {
    for (const total of [0, 1, 2, 7, 30, 1001]) {
      for (let workers = 1; workers <= 4; workers++) {
        for (let nodes = 1; nodes <= 3; nodes++) {
          const perNode = Array<number>(nodes).fill(0);
          const run = { watchers: total, buyers: 0, buysPerSecond: 0 };
          for (const share of workerShares(run, workers))
            for (let client = 0; client < share.watchers; client++)
              perNode[nodeOf(share.firstClient + client, nodes)]! += 1;
          // Numbering each worker's clients from 0 would put 2 clients on 2 workers on node 0.
          expect({ total, workers, nodes, perNode }).toEqual({
            total,
            workers,
            nodes,
            perNode: shares(total, nodes),
          });
        }
      }
    }
  });
});

describe('settings', () => {
  test('defaults, a blank variable counting as unset', () => {
    const defaults = optionsFromEnv({ BENCH_CLIENTS: '', BENCH_STORM: ' ' });
    expect(defaults).toEqual({
      clients: [1000, 5000, 10000],
      tickMs: [1000, 100],
      seconds: 20,
      warmupSeconds: 3,
      workers: 2,
      servers: ['forkcast', 'tutorial', 'raw'],
      cluster: [],
      storm: { watchers: 5000, buyers: 100, buysPerSecond: 2000 },
      startupRuns: 5,
      pin: true,
      out: expect.any(String) as unknown,
    });
    // A timestamp without ':', so that the file name is valid everywhere.
    expect(defaults.out.split(path.sep).slice(-2).join('/')).toMatch(
      /^results\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.jsonl$/,
    );
  });

  test.each<[NodeJS.ProcessEnv, Partial<ReturnType<typeof optionsFromEnv>>]>([
    [{ BENCH_CLIENTS: '10, 20,30' }, { clients: [10, 20, 30] }],
    [{ TICK_MS: '250' }, { tickMs: [250] }],
    [{ BENCH_SECONDS: '5' }, { seconds: 5 }],
    [{ BENCH_WARMUP: '0' }, { warmupSeconds: 0 }],
    [{ BENCH_WORKERS: '4' }, { workers: 4 }],
    [{ BENCH_PIN: '0' }, { pin: false }],
    [{ BENCH_SERVERS: ' raw, tutorial' }, { servers: ['raw', 'tutorial'] }],
    [{ BENCH_CLUSTER: '1, 2,3' }, { cluster: [1, 2, 3] }],
    [{ BENCH_STORM: '300,10,50' }, { storm: { watchers: 300, buyers: 10, buysPerSecond: 50 } }],
    [
      { BENCH_CLUSTER: 'off', BENCH_STORM: 'off', BENCH_STARTUP: '0' },
      { storm: null, cluster: [], startupRuns: 0 },
    ],
    [{ BENCH_OUT: 'o.jsonl' }, { out: path.resolve('o.jsonl') }],
  ])('reads %j', (env, expected) => {
    expect(optionsFromEnv(env)).toMatchObject(expected);
  });

  const SEP = 'separated by commas';
  const [INTS, WHOLE] = [`positive integers ${SEP}`, `whole numbers ${SEP}`];
  test.each<[NodeJS.ProcessEnv, string]>([
    [{ BENCH_WARMUP: '-1' }, WHOLE],
    [{ BENCH_STARTUP: '1.5' }, WHOLE],
    [{ BENCH_SECONDS: '20,30' }, 'one number'],
    [{ BENCH_CLIENTS: '10,abc' }, INTS],
    [{ TICK_MS: '1000,,100' }, INTS],
    [{ BENCH_STORM: '5000,x,2000' }, INTS],
    [{ BENCH_STORM: '5000,100' }, '"watchers,buyers,buys per second" or "off"'],
    [{ BENCH_SERVERS: 'forkcast,Raw' }, `"forkcast", "tutorial" or "raw", or several ${SEP}`],
    [{ BENCH_PIN: 'yes' }, '0 or 1'],
  ])('refuses %j, naming the variable', (env, expected) => {
    const [[name, value]] = Object.entries(env) as [[string, string]];
    expect(() => optionsFromEnv(env)).toThrow(`${name} must be ${expected}, got "${value}"`);
  });

  test('cluster runs without a redis-server are refused before anything starts', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-bench-unit-'));
    const redis = process.env['REDIS_SERVER'];
    process.env['REDIS_SERVER'] = path.join(dir, 'no-such-redis-server');
    try {
      const options = optionsFromEnv({ BENCH_CLUSTER: '2', BENCH_OUT: path.join(dir, 'r.jsonl') });
      const lines: string[] = [];
      await expect(runBench(options, (line) => lines.push(line))).rejects.toThrow(
        /^BENCH_CLUSTER needs redis-server/,
      );
      expect([lines, existsSync(options.out)]).toEqual([[], false]);
    } finally {
      if (redis === undefined) delete process.env['REDIS_SERVER'];
      else process.env['REDIS_SERVER'] = redis;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('stormState leaves room for 20 s of 2,000 buys/s on every stock within the doubles', () => {
  // 40,000 buys round robin over three stocks: at most 13,334 × 1.1 each, in powers of ten.
  const finalExponent = (price: number): number => Math.log10(price) + 13_500 * Math.log10(1.1);
  for (const { price } of stormState(0).stocks) {
    expect(price).toBeGreaterThan(0);
    expect(finalExponent(price)).toBeLessThan(Math.log10(Number.MAX_VALUE));
  }
  // Whereas the seed prices would overflow long before.
  expect(finalExponent(14.5)).toBeGreaterThan(Math.log10(Number.MAX_VALUE));
});

test.each<[string, number | null]>([
  ['{"level":30,"url":"http://127.0.0.1:4567","msg":"forkcast listening"}', 4567],
  ['{"msg":"raw baseline listening","port":1234}', 1234],
  ['Debugger listening on ws://127.0.0.1:9229/abc', null],
  ['{"port":"1234"}', null],
  // Later log lines carry request paths in `url`; they must not throw.
  ['{"level":50,"url":"/api/x","msg":"request failed"}', null],
  ['{"url":"http://[::1"}', null],
])('portIn(%j) is %j: the port of a server’s listening line', (line, port) => {
  expect(portIn(line)).toBe(port);
});

describe('cluster', () => {
  // What leaderOf reads of each node's /healthz.
  const health = (
    node: string,
    role: string,
    leader: string | null,
    pid: number | null = null,
  ) => ({ status: 'ok', role, node, leader, pid });
  const leaderA = health('a', 'leader', 'a', 4242);
  const followerOfA = (node: string) => health(node, 'follower', 'a');

  test.each<[string, unknown[], number | null]>([
    ['a leader after two followers', [followerOfA('b'), followerOfA('c'), leaderA], 2],
    ['a leader whose ticker child is not up yet', [health('a', 'leader', 'a')], null],
    ['a follower naming an old leader', [leaderA, health('b', 'follower', 'z')], null],
    ['two leaders', [leaderA, health('b', 'leader', 'b', 4343), followerOfA('c')], null],
    ['a node that did not answer', [leaderA, null], null],
    ['a degraded leader', [{ ...leaderA, status: 'degraded' }], null],
  ])('leaderOf %s: %s', (_, healths, expected) => {
    expect(leaderOf(healths)).toBe(expected);
  });

  /** `delivered` updates to one client, all at `ms` but for a late one when `late`. */
  const nodeReport = (delivered: number, ms: number, late = false): NodeReport => {
    const latencies = Array.from({ length: delivered }, (_, i) => (late && i === 0 ? 1500 : ms));
    const latency = [...histogramOf(latencies)];
    return { connected: 1, delivered, late: late ? 1 : 0, latency };
  };
  const workerReport = (nodes: NodeReport[], seqs: number[]): WorkerReport => {
    const latency: Histogram = new Map();
    for (const node of nodes) merge(latency, node.latency);
    const sum = (of: (node: NodeReport) => number) => nodes.reduce((n, node) => n + of(node), 0);
    return {
      connected: sum((node) => node.connected),
      delivered: sum((node) => node.delivered),
      late: sum((node) => node.late),
      seqs,
      outOfOrder: 0,
      latency: [...latency],
      lost: 0,
      buysSent: 0,
      acksOk: 0,
      acksRejected: 0,
      ackLatency: [],
      nodes,
    };
  };
  const tenSeqs = Array.from({ length: 10 }, (_, i) => 100 + i);
  // Two workers with one client on each node; the second worker's client on node 1 missed
  // two updates, one of node 0's clients got one late.
  const twoNodes: Measured = {
    reports: [
      workerReport([nodeReport(10, 2), nodeReport(10, 6)], tenSeqs),
      workerReport([nodeReport(10, 4, true), nodeReport(8, 8)], tenSeqs.slice(2)),
    ],
    cpuMicros: [2_000_000, 1_000_000, 500_000],
    loadCpuMicros: 800_000,
    rssGrowth: [20 * 1024, 40 * 1024],
  };
  const scenario = {
    name: 'fan-out',
    kind: 'cluster',
    nodes: 2,
    watchers: 4,
    tickMs: 1000,
  } as const;
  const run = { leader: 0, leaderAfter: 0, serverStartMs: 600, leaderElectedMs: 900 };

  test('summarizeCluster counts the cluster like one server, charging every node and Redis', () => {
    const figures = summarizeCluster(scenario, { seconds: 10 }, twoNodes, run);
    expect(figures).toMatchObject({
      ...scenario,
      ...run,
      clients: 4,
      broadcasts: 10,
      delivered: 38,
      missed: 2,
      late: 1,
      latencyMs: { count: 38, max: expect.closeTo(1500, 9) },
      serverCpuPercent: expect.closeTo(35, 9),
      cpuMicrosPerUpdate: expect.closeTo(3_500_000 / 38, 9),
      redisCpuPercent: expect.closeTo(5, 9),
      redisCpuMicrosPerUpdate: expect.closeTo(500_000 / 38, 9),
      loadCpuPercent: expect.closeTo(8, 9),
      // Every node's growth over all the clients.
      memoryPerConnectionKB: expect.closeTo(60 / 4, 9),
    });
    // node, role, clients, delivered, missed, late, p50, CPU %, KB/conn.
    expect(
      figures.perNode.map((node) => [
        ...[node.node, node.role, node.clients, node.delivered, node.missed, node.late],
        ...[node.latencyMs.p50, node.cpuPercent, node.memoryPerConnectionKB],
      ]),
    ).toEqual([
      [0, 'leader', 2, 20, 0, 1, expect.closeTo(2, 9), 20, 10],
      [1, 'follower', 2, 18, 2, 0, expect.closeTo(6, 9), 10, 20],
    ]);
    expect(() =>
      summarizeCluster(scenario, { seconds: 10 }, { ...twoNodes, cpuMicros: [1, 2] }, run),
    ).toThrow('expected CPU of 2 nodes and Redis, got 2 figures');
  });
});

/** A finished cluster run; only what the report reads needs to vary. */
function clusterResult(overrides: Partial<ClusterResult> = {}): ClusterResult {
  const { kind: _kind, name: _name, ...figures } = result({ clients: overrides.clients ?? 1000 });
  return {
    ...figures,
    name: 'fan-out',
    kind: 'cluster',
    nodes: 2,
    buyers: 0,
    buysPerSecond: 0,
    redisCpuPercent: 1.5,
    redisCpuMicrosPerUpdate: 0.75,
    leaderElectedMs: 900,
    leader: 0,
    leaderAfter: 0,
    perNode: [],
    ...overrides,
  };
}

test('printReport writes the fan-out, ratio, cluster, storm and start-up tables', () => {
  const results = [
    measured('forkcast', 6, 3, 10, 12, 900),
    measured('tutorial', 4, 6, 5, 16, 600),
    measured('raw', 2, 1.5, 4, 3, 1000),
    // Beside raw only, and without latencies: '–' where there is no figure.
    result({ kind: 'raw', clients: 10000, tickMs: 100, latencyMs: summary(NaN, NaN) }),
    result({ clients: 10000, tickMs: 100 }),
    result({
      name: 'buy-storm',
      watchers: 5000,
      buyers: 100,
      clients: 5100,
      tickMs: 100,
      buysSent: 40_000,
      acksOk: 39_990,
      acksRejected: 4,
      acksPerSecond: 1999.7,
      ackLatencyMs: summary(1.234, 20),
      serverAckWithin: { within10ms: 0.9, within25ms: 1 },
    }),
  ];
  type Role = 'leader' | 'follower';
  const node = (node: number, role: Role, missed: number, ...latency: [number, number]) => {
    const latencyMs = summary(...latency);
    const same = { clients: 500, delivered: 10_000, deliveredPerSecond: 500, late: 0 };
    return { ...same, node, role, missed, latencyMs, cpuPercent: 12.5, memoryPerConnectionKB: 18 };
  };
  const perNode = [node(0, 'follower', 3, 5, 20), node(1, 'leader', 0, 4, 10)];
  const cluster = [
    clusterResult({ leader: 1, cpuMicrosPerUpdate: 9, perNode }),
    clusterResult({ nodes: 3, clients: 10000, tickMs: 100, redisCpuPercent: 2.25 }),
  ];
  const lines: string[] = [];
  printReport(
    {
      results,
      ratios: ratios(results),
      cluster,
      clusterRatios: clusterRatios(results, cluster),
      clusterPinning: 'not pinned',
      startup: {
        childForkMs: [40, 35.4, 90],
        serverStartMs: [300],
        bundleGzipBytes: { 'main.js': 1234 },
      },
    },
    optionsFromEnv({ BENCH_SECONDS: '20', BENCH_OUT: 'results/run.jsonl' }),
    (line) => lines.push(line),
  );
  // The tables as they go into BENCHMARKS.md; a change of format shows as a diff of this file.
  const golden = readFileSync(path.join(__dirname, 'bench-report.golden.txt'), 'utf8');
  expect(`${lines.join('\n')}\n`).toBe(golden);
});
