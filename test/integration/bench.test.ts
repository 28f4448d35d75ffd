/** Smoke run of the compiled `npm run bench` on a tiny load (30 clients, a one-second window): the
 * chain end to end, from the servers and a two-node cluster on Redis to the tables. */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { ClusterResult } from '../../bench/cluster';
import type { ClusterRatio, FanOutRatio } from '../../bench/report';
import type { ScenarioResult } from '../../bench/scenario';
import type { StartupFigures } from '../../bench/startup';
import { ROOT } from '../../server/paths';
import { findRedisServer } from '../helpers/redis-server';

const CLIENTS = 30;

type Line =
  | ({ type: 'scenario' } & (ScenarioResult | ClusterResult))
  | ({ type: 'ratio' } & (FanOutRatio | ClusterRatio))
  | ({ type: 'startup' } & StartupFigures);

let dir: string;
let runs = 0;
beforeAll(() => {
  // Built apart, into bench/build inside its own sources; it still counts as built the second time.
  const ensureBuilt = [path.join(ROOT, 'scripts', 'ensure-built.mjs'), '--bench'];
  execFileSync(process.execPath, ensureBuilt);
  expect(spawnSync(process.execPath, ensureBuilt, { encoding: 'utf8' }).stderr).toBe('');
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-bench-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the compiled bench: its exit code, its output (both streams), and the records it wrote. */
function runBench(env: NodeJS.ProcessEnv) {
  const out = path.join(dir, `${++runs}.jsonl`);
  const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'build', 'bench', 'run.js')], {
    cwd: ROOT,
    env: { ...process.env, BENCH_OUT: out, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const lines = () =>
    readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Line);
  return new Promise<{ code: number | null; stdout: string; lines: () => Line[] }>((resolve) =>
    // 'close', after the last output, which 'exit' may come before.
    child.once('close', (code) => resolve({ code, stdout, lines })),
  );
}

const redis = findRedisServer('the bench cluster run');

it('measures forkcast (over Socket.IO and SSE), both baselines, a cluster, a buy storm and start-up, and records them; refuses a cluster run without redis-server before starting anything', async () => {
  const small = {
    ...{ BENCH_CLIENTS: String(CLIENTS), TICK_MS: '100', BENCH_SECONDS: '1', BENCH_WARMUP: '0' },
    // One load worker: fewer processes, same chain; pinning would crowd the other test workers.
    ...{ BENCH_WORKERS: '1', BENCH_PIN: '0' },
  };
  // Three benches at once, as they mostly sleep through their windows; a fourth refuses at once.
  const none = { BENCH_CLUSTER: 'off', BENCH_STORM: 'off', BENCH_STARTUP: '0' };
  const [single, rest, storming, refused] = await Promise.all([
    runBench({ ...small, ...none }),
    runBench({ ...small, ...none, BENCH_SERVERS: 'raw', BENCH_CLUSTER: redis ? '2' : 'off' }),
    runBench({
      ...{ ...small, ...none, BENCH_CLIENTS: 'off', BENCH_SERVERS: 'forkcast' },
      ...{ BENCH_STORM: '20,5,100', BENCH_STARTUP: '1' },
    }),
    runBench({ BENCH_CLUSTER: '2', REDIS_SERVER: '/no/redis-server' }),
  ]);
  // The wiring: a missing Redis is found before anything starts (no records); the bench exits 1.
  const refusal =
    'bench failed: BENCH_CLUSTER needs redis-server (`apt-get install redis-server`, or REDIS_SERVER=<path>); set BENCH_CLUSTER=off to skip the cluster runs\n';
  // The output of a bench only when it failed, to say why.
  const benches = [single, rest, storming, refused];
  const ended = benches.map(({ code, stdout }) => ({ code, output: code === 0 ? '' : stdout }));
  const ok = { code: 0, output: '' };
  expect(ended).toEqual([ok, ok, ok, { code: 1, output: refusal }]);
  expect(refused.lines).toThrow('ENOENT');

  const lines = benches.slice(0, 3).flatMap((run) => run.lines());
  const scenarios = lines.filter((line) => line.type === 'scenario');
  expect(scenarios.map((each) => `${each.name} ${each.kind}`)).toEqual([
    ...['fan-out forkcast', 'fan-out sse', 'fan-out tutorial', 'fan-out raw'],
    ...['fan-out raw', ...(redis ? ['fan-out cluster'] : []), 'buy-storm forkcast'],
  ]);
  for (const run of scenarios.filter((each) => each.name === 'fan-out')) {
    // About ten ticks in 1 s at 10 Hz (fewer on a starved machine); each client got each, in order.
    expect(run.broadcasts).toBeGreaterThan(0);
    expect(run).toMatchObject({ clients: CLIENTS, delivered: run.broadcasts * CLIENTS, missed: 0 });
    expect(run).toMatchObject({ lost: 0, outOfOrder: 0, latencyMs: { count: run.delivered } });
    // CPU is counted in 10 ms clock ticks: a baseline may use none in a second.
    expect(run.cpuMicrosPerUpdate).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(run.memoryPerConnectionKB)).toBe(true);
    expect(run.loadStallMs).toBeGreaterThanOrEqual(0);
  }
  expect(scenarios[0]!.cpuMicrosPerUpdate).toBeGreaterThan(0);
  const storm = scenarios.at(-1)!;
  // The ratios' arithmetic is the unit tests'; here they are recorded and printed.
  const ratios = lines.filter((line) => line.type === 'ratio');
  for (const kind of ['forkcast', 'sse']) {
    expect(ratios).toContainEqual(expect.objectContaining({ kind, clients: CLIENTS, tickMs: 100 }));
    expect(single.stdout).toMatch(
      new RegExp(`\\|\\s+${kind} \\|\\s+30 \\| 10 Hz (\\|\\s+\\S+× ){10}\\|`),
    );
  }

  // About 100 buys (5 buyers × 20/s, under the per-connection limit), each answered, none refused.
  expect(storm.buysSent).toBeGreaterThanOrEqual(50);
  expect([storm.acksOk, storm.acksRejected, storm.missed]).toEqual([storm.buysSent, 0, 0]);
  expect(storm.ackLatencyMs.count).toBe(storm.buysSent);
  expect(storm.broadcasts).toBeGreaterThan(0);
  // Read from the server's histogram; no timing is asserted (the machine may be loaded).
  const { within10ms, within25ms } = storm.serverAckWithin!;
  expect([within10ms, within25ms].every((share) => share >= 0 && share <= 1)).toBe(true);
  expect(within25ms).toBeGreaterThanOrEqual(within10ms);

  const startup = lines.find((line) => line.type === 'startup')!;
  expect(startup.childForkMs).toEqual([expect.any(Number)]);
  expect(startup.serverStartMs).toHaveLength(1);
  if (!redis) return;

  // Half the clients on each node, each delivering every update through the Redis adapter.
  const cluster = scenarios.find((each) => each.kind === 'cluster') as ClusterResult;
  expect(cluster.leaderAfter).toBe(cluster.leader);
  expect(cluster.perNode[cluster.leader]?.role).toBe('leader');
  for (const node of cluster.perNode)
    expect(node).toMatchObject({ clients: CLIENTS / 2, delivered: cluster.delivered / 2 });
  expect(cluster.redisCpuMicrosPerUpdate).toBeLessThan(cluster.cpuMicrosPerUpdate);
  expect(ratios).toContainEqual(expect.objectContaining({ kind: 'cluster', nodes: 2 }));
  expect(rest.stdout).toMatch(/\|\s+30 \| 10 Hz \|\s+2 \|\s+\d \|\s+leader \|\s+15 \|/);
}, 90_000);
