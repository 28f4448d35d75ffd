/**
 * Smoke test of `npm run bench`: the compiled benchmark, run as a user runs it, on a tiny load
 * (a few dozen clients, a one-second window). It proves the whole chain works end to end: all
 * three servers (forkcast, the tutorial and the raw baselines) start, the load workers connect
 * and count, the buy storm is acked, ratios and the start-up figures come out, and the results
 * file holds one JSON line per figure. A second run does the same for a cluster of two nodes on
 * a real redis-server.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { ClusterResult } from '../../bench/cluster';
import { findRedisServer } from '../../bench/redis-server';
import { missingTool } from '../helpers/required-tool';
import type { ClusterRatio, FanOutRatio } from '../../bench/report';
import type { ScenarioResult } from '../../bench/scenario';
import type { StartupFigures } from '../../bench/startup';

const ROOT = path.resolve(__dirname, '..', '..');
const CLIENTS = 30;
const TICK_MS = 100;
const STORM = { watchers: 20, buyers: 5, buysPerSecond: 100 };

let dir: string;
beforeAll(() => {
  // The bench is built apart from the product, into bench/build, and only when asked for.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'ensure-built.mjs'), '--bench']);
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-bench-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runBench(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'build', 'bench', 'run.js')], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout: stdout + stderr })),
  );
}

type Line =
  | ({ type: 'scenario' } & ScenarioResult)
  | ({ type: 'scenario' } & ClusterResult)
  | ({ type: 'ratio' } & FanOutRatio)
  | ({ type: 'ratio' } & ClusterRatio)
  | ({ type: 'startup' } & StartupFigures);

const readLines = (file: string): Line[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Line);

function redisBinary(): string | null {
  return (
    findRedisServer() ??
    missingTool('the cluster bench test', 'No redis-server found (`apt-get install redis-server`)')
  );
}

const itWithRedis = redisBinary() ? it : it.skip;

it('measures forkcast and both baselines, a buy storm and start-up, and records them', async () => {
  const out = path.join(dir, 'results.jsonl');
  const { code, stdout } = await runBench({
    BENCH_CLIENTS: String(CLIENTS),
    TICK_MS: String(TICK_MS),
    BENCH_SECONDS: '1',
    BENCH_WARMUP: '0',
    BENCH_STORM: `${STORM.watchers},${STORM.buyers},${STORM.buysPerSecond}`,
    BENCH_STARTUP: '1',
    // Pinning would move this test's servers onto one CPU beside the other test workers.
    BENCH_PIN: '0',
    BENCH_OUT: out,
  });
  expect({ code, stdout }).toEqual({ code: 0, stdout: expect.any(String) });

  const lines = readLines(out);
  const scenarios = lines.filter(
    (line): line is { type: 'scenario' } & ScenarioResult => line.type === 'scenario',
  );
  expect(scenarios.map((each) => `${each.name} ${each.kind}`)).toEqual([
    'fan-out forkcast',
    'fan-out tutorial',
    'fan-out raw',
    'buy-storm forkcast',
  ]);
  for (const run of scenarios.filter((each) => each.name === 'fan-out')) {
    expect(run.clients).toBe(CLIENTS);
    // A 1 s window at 10 Hz holds about ten ticks; every client got every one, in order.
    expect(run.broadcasts).toBeGreaterThanOrEqual(5);
    expect(run.delivered).toBe(run.broadcasts * CLIENTS);
    expect([run.missed, run.lost, run.outOfOrder]).toEqual([0, 0, 0]);
    expect(run.latencyMs.count).toBe(run.delivered);
    expect(run.latencyMs.p50).toBeLessThanOrEqual(run.latencyMs.p99);
    expect(run.latencyMs.p99).toBeLessThanOrEqual(run.latencyMs.max);
    expect(run.cpuMicrosPerUpdate).toBeGreaterThan(0);
    expect(Number.isFinite(run.memoryPerConnectionKB)).toBe(true);
  }

  const storm = scenarios.find((each) => each.name === 'buy-storm')!;
  expect(storm.clients).toBe(STORM.watchers + STORM.buyers);
  // About 100 buys in the window, each answered, none refused (5 buyers × 20/s is under the
  // per-connection limit).
  expect(storm.buysSent).toBeGreaterThanOrEqual(50);
  expect(storm.acksOk).toBe(storm.buysSent);
  expect(storm.acksRejected).toBe(0);
  expect(storm.ackLatencyMs.count).toBe(storm.buysSent);
  // Buys are broadcast as conflated updates between the ticks, so watchers see more updates
  // than ticks.
  expect(storm.broadcasts).toBeGreaterThan(10);
  expect(storm.missed).toBe(0);
  // The server's own histogram saw the buys too (shares, so between 0 and 1, in order).
  expect(storm.serverAckWithin).not.toBeNull();
  const { within10ms, within25ms } = storm.serverAckWithin!;
  expect(within10ms).toBeGreaterThan(0);
  expect(within10ms).toBeLessThanOrEqual(within25ms);
  expect(within25ms).toBeLessThanOrEqual(1);

  const ratios = lines.filter(
    (line): line is { type: 'ratio' } & FanOutRatio => line.type === 'ratio',
  );
  expect(ratios).toHaveLength(1);
  const [forkcast, tutorial, raw] = scenarios;
  expect(ratios[0]).toMatchObject({ clients: CLIENTS, tickMs: TICK_MS });
  expect(ratios[0]!.cpuPerUpdate).toBeCloseTo(
    forkcast!.cpuMicrosPerUpdate / raw!.cpuMicrosPerUpdate,
    6,
  );
  expect(ratios[0]!.tutorial.cpuPerUpdate).toBeCloseTo(
    forkcast!.cpuMicrosPerUpdate / tutorial!.cpuMicrosPerUpdate,
    6,
  );

  const startup = lines.find((line) => line.type === 'startup')!;
  expect(startup.childForkMs).toHaveLength(1);
  expect(startup.serverStartMs).toHaveLength(1);
  expect(startup.childForkMs[0]).toBeGreaterThan(0);

  // The tables a user reads.
  expect(stdout).toContain('forkcast ÷ the tutorial Socket.IO server and ÷ raw ws');
  expect(stdout).toMatch(/\|\s+÷ tutorial: CPU\/update \|.*\|\s+÷ raw: CPU\/update \|/);
  // One ratio row: 30 clients at 10 Hz, then ten ratios (five ÷ tutorial, five ÷ raw).
  expect(stdout).toMatch(/\|\s+30 \| 10 Hz (\|\s+\S+× ){10}\|/);
  expect(stdout).toMatch(/\|\s+forkcast \|\s+30 \| 10 Hz \|/);
  expect(stdout).toMatch(/\|\s+tutorial \|\s+30 \| 10 Hz \|/);
  expect(stdout).toMatch(/\|\s+raw \|\s+30 \| 10 Hz \|/);
  expect(stdout).toContain('Buy storm');
  expect(stdout).toContain('Ticker child fork → ready');
}, 90_000);

it('refuses bad settings with a clear message before starting anything', async () => {
  const { code, stdout } = await runBench({
    BENCH_CLIENTS: '10,lots',
    BENCH_OUT: path.join(dir, 'never.jsonl'),
  });
  expect(code).toBe(1);
  expect(stdout).toContain(
    'bench failed: BENCH_CLIENTS must be positive integers separated by commas, got "10,lots"',
  );
});

itWithRedis(
  'measures a cluster of two nodes beside the raw baseline, and records what each node delivered',
  async () => {
    const out = path.join(dir, 'cluster.jsonl');
    const { code, stdout } = await runBench({
      BENCH_CLIENTS: String(CLIENTS),
      TICK_MS: String(TICK_MS),
      BENCH_SECONDS: '2',
      BENCH_WARMUP: '0',
      BENCH_SERVERS: 'raw',
      BENCH_CLUSTER: '2',
      BENCH_STORM: 'off',
      BENCH_STARTUP: '0',
      BENCH_PIN: '0',
      BENCH_OUT: out,
    });
    expect({ code, stdout }).toEqual({ code: 0, stdout: expect.any(String) });

    const lines = readLines(out);
    const scenarios = lines.filter((line) => line.type === 'scenario');
    expect(scenarios.map((each) => `${each.name} ${each.kind}`)).toEqual([
      'fan-out raw',
      'fan-out cluster',
    ]);
    const raw = scenarios.find((each) => each.kind === 'raw')!;
    const cluster = scenarios.find(
      (each): each is { type: 'scenario' } & ClusterResult => each.kind === 'cluster',
    )!;
    expect(cluster).toMatchObject({ nodes: 2, clients: CLIENTS, tickMs: TICK_MS });
    // A 2 s window at 10 Hz holds about twenty ticks; every client of either node got every
    // one, in order, through the Redis adapter.
    expect(cluster.broadcasts).toBeGreaterThanOrEqual(10);
    expect(cluster.delivered).toBe(cluster.broadcasts * CLIENTS);
    expect([cluster.missed, cluster.lost, cluster.outOfOrder]).toEqual([0, 0, 0]);
    expect(cluster.latencyMs.count).toBe(cluster.delivered);
    expect(cluster.leaderAfter).toBe(cluster.leader);

    // Half the clients on each node, one leader, and each node delivered every update.
    expect(cluster.perNode.map((node) => node.role).sort()).toEqual(['follower', 'leader']);
    expect(cluster.perNode[cluster.leader]?.role).toBe('leader');
    for (const node of cluster.perNode) {
      expect(node.clients).toBe(CLIENTS / 2);
      expect(node.delivered).toBe(cluster.broadcasts * node.clients);
      expect(node.missed).toBe(0);
      expect(node.latencyMs.count).toBe(node.delivered);
      expect(node.cpuPercent).toBeGreaterThan(0);
    }
    // The totals charge both nodes and Redis; Redis's part is a part of them.
    expect(cluster.cpuMicrosPerUpdate).toBeGreaterThan(0);
    expect(cluster.redisCpuMicrosPerUpdate).toBeGreaterThanOrEqual(0);
    expect(cluster.redisCpuMicrosPerUpdate).toBeLessThan(cluster.cpuMicrosPerUpdate);
    const nodesPercent = cluster.perNode.reduce((sum, node) => sum + node.cpuPercent, 0);
    expect(cluster.serverCpuPercent).toBeCloseTo(nodesPercent + cluster.redisCpuPercent, 6);

    const ratios = lines.filter((line) => line.type === 'ratio');
    expect(ratios).toEqual([
      expect.objectContaining({ kind: 'cluster', nodes: 2, clients: CLIENTS }),
    ]);
    expect(ratios[0]!.cpuPerUpdate).toBeCloseTo(
      cluster.cpuMicrosPerUpdate / raw.cpuMicrosPerUpdate,
      6,
    );

    expect(stdout).toContain('Cluster (the same clients round robin over N nodes');
    expect(stdout).toMatch(/\|\s+raw \|\s+1 \|\s+30 \| 10 Hz \|/);
    expect(stdout).toMatch(/\|\s+cluster \|\s+2 \|\s+30 \| 10 Hz \|/);
    expect(stdout).toContain('cluster ÷ raw ws');
    expect(stdout).toMatch(/\|\s+30 \| 10 Hz \|\s+2 \|\s+\d \|\s+leader \|\s+15 \|/);
  },
  90_000,
);

it('refuses cluster runs without a redis-server, naming BENCH_CLUSTER, before starting anything', async () => {
  const { code, stdout } = await runBench({
    BENCH_CLIENTS: String(CLIENTS),
    BENCH_CLUSTER: '2',
    REDIS_SERVER: path.join(dir, 'no-such-redis-server'),
    BENCH_OUT: path.join(dir, 'never-cluster.jsonl'),
  });
  expect(code).toBe(1);
  expect(stdout).toContain('bench failed: BENCH_CLUSTER needs redis-server');
  // Nothing ran: not even the single-server runs wrote a line.
  expect(existsSync(path.join(dir, 'never-cluster.jsonl'))).toBe(false);
});
