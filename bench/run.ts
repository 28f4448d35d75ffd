/**
 * `npm run bench`: forkcast's server against two baselines, a tutorial-style Socket.IO server
 * and a raw `ws` server, back to back in one run, for each client count and tick rate (and
 * forkcast's event stream read by SSE clients, at one of them), then
 * (with BENCH_CLUSTER) the same clients spread over clusters of forkcast nodes sharing one
 * Redis, then a buy storm and the start-up figures. Prints tables with ratios to both baselines
 * and appends one JSON line per run to the results file.
 *
 * Settings (environment):
 *   BENCH_CLIENTS   client counts, comma-separated, or "off" (1000,5000,10000)
 *   TICK_MS         tick intervals in ms, comma-separated (1000,100: 1 Hz and 10 Hz)
 *   BENCH_SECONDS   measured window per run               (20)
 *   BENCH_WARMUP    seconds between connecting and measuring (3)
 *   BENCH_WORKERS   load worker processes                 (2)
 *   BENCH_SERVERS   which servers                         (forkcast,sse,tutorial,raw); sse
 *                   is forkcast's /api/stream read by SSE clients, at the largest client
 *                   count and the first tick only: one row beside the others, not a grid
 *   BENCH_CLUSTER   node counts of cluster runs, comma-separated, or "off" (off); each runs
 *                   a fresh redis-server (REDIS_SERVER names the binary) and N nodes
 *   BENCH_STORM     buy storm "watchers,buyers,buys/s", or "off" (5000,100,2000)
 *   BENCH_REPEAT    rounds of each fan-out row, the servers taking turns; with more than
 *                   one the report adds each ratio's median over the rounds (1)
 *   BENCH_STARTUP   start-up runs, 0 to skip              (5)
 *   BENCH_PIN       pin server and load to separate CPUs with taskset, 0 to not (1); a
 *                   cluster's nodes and Redis all share the server's CPU
 *   BENCH_OUT       results file (JSON lines)             (bench/results/<time>.jsonl)
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import path from 'node:path';

import { runCluster, type ClusterResult } from './cluster';
import { openFileLimit, pinSelf, planCpus, unpinned, type CpuPlan } from './processes';
import { findRedisServer } from './redis-server';
import {
  clusterNodeTable,
  clusterRatios,
  clusterRatioTable,
  clusterTable,
  fanOutTable,
  medianRatios,
  ratios,
  ratioTable,
  stormTable,
  type ClusterRatio,
  type FanOutRatio,
} from './report';
import { runScenario, type RunSettings, type Scenario, type ScenarioResult } from './scenario';
import { measureStartup, type StartupFigures } from './startup';
import { median } from './stats';
import type { ServerKind } from './worker-protocol';

export interface BenchOptions {
  clients: number[];
  tickMs: number[];
  seconds: number;
  warmupSeconds: number;
  workers: number;
  servers: ServerKind[];
  /** Node counts of the cluster runs; empty for none. */
  cluster: number[];
  storm: { watchers: number; buyers: number; buysPerSecond: number } | null;
  repeat: number;
  startupRuns: number;
  /** Pin the server and the load generator to separate CPUs (where taskset exists). */
  pin: boolean;
  out: string;
}

export interface BenchResult {
  results: ScenarioResult[];
  ratios: FanOutRatio[];
  /** Each ratio's median over BENCH_REPEAT rounds; empty with one round. */
  medians: FanOutRatio[];
  cluster: ClusterResult[];
  clusterRatios: ClusterRatio[];
  /** Which CPUs the cluster runs had. */
  clusterPinning: string;
  startup: StartupFigures | null;
}

/** Every server the bench knows; by default it runs them all, in this order. */
const SERVER_KINDS: readonly ServerKind[] = ['forkcast', 'sse', 'tutorial', 'raw'];

/** bench/results, from bench/build/bench/ where the compiled benchmark runs. */
const RESULTS = path.resolve(__dirname, '..', '..', 'results');

/** Reads settings from the environment; every error names the variable it is about. */
function settingsReader(env: NodeJS.ProcessEnv) {
  // An empty variable counts as unset, as in the server's own configuration.
  const text = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === '' ? undefined : value;
  };
  const fail = (name: string, expected: string): never => {
    throw new Error(`${name} must be ${expected}, got "${env[name]}"`);
  };
  const integers = (name: string, min: number): number[] | undefined => {
    const value = text(name);
    if (value === undefined) return undefined;
    const numbers = value.split(',').map((part) => Number(part.trim()));
    if (numbers.some((number) => !Number.isInteger(number) || number < min))
      fail(name, `${min === 0 ? 'whole numbers' : 'positive integers'} separated by commas`);
    return numbers;
  };
  return {
    text,
    fail,
    list: (name: string, fallback: number[]): number[] => integers(name, 1) ?? fallback,
    one: (name: string, fallback: number, min = 1): number => {
      const numbers = integers(name, min);
      if (numbers === undefined) return fallback;
      if (numbers.length !== 1) fail(name, 'one number');
      return numbers[0] ?? fallback;
    },
  };
}

const STORM_MAX_BUYS = 40_000;

export function optionsFromEnv(env: NodeJS.ProcessEnv): BenchOptions {
  const read = settingsReader(env);
  const servers = (read.text('BENCH_SERVERS') ?? SERVER_KINDS.join(','))
    .split(',')
    .map((name) => name.trim());
  if (servers.some((server) => !(SERVER_KINDS as readonly string[]).includes(server)))
    read.fail(
      'BENCH_SERVERS',
      '"forkcast", "sse", "tutorial" or "raw", or several separated by commas',
    );

  const seconds = read.one('BENCH_SECONDS', 20);
  let storm: BenchOptions['storm'] = null;
  if (read.text('BENCH_STORM') !== 'off') {
    const [watchers, buyers, buysPerSecond, ...rest] = read.list('BENCH_STORM', [5000, 100, 2000]);
    if (
      watchers === undefined ||
      buyers === undefined ||
      buysPerSecond === undefined ||
      rest.length
    )
      return read.fail('BENCH_STORM', '"watchers,buyers,buys per second" or "off"');
    storm = { watchers, buyers, buysPerSecond };
    // From 10^-300 of the seed (stormState) about 44,000 buys of ×1.1 reach the largest double;
    // past it buys are rightly refused, and the storm would measure refusals.
    const buys = buysPerSecond * seconds;
    if (buys > STORM_MAX_BUYS)
      throw new Error(
        `BENCH_STORM: ${buysPerSecond} buys/s for ${seconds} s (BENCH_SECONDS) is ${buys} buys, more than the ${STORM_MAX_BUYS} the prices have room for; lower either, or BENCH_STORM=off`,
      );
  }
  const pin = read.text('BENCH_PIN') ?? '1';
  if (pin !== '0' && pin !== '1') read.fail('BENCH_PIN', '0 or 1');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    clients:
      read.text('BENCH_CLIENTS') === 'off' ? [] : read.list('BENCH_CLIENTS', [1000, 5000, 10000]),
    tickMs: read.list('TICK_MS', [1000, 100]),
    seconds,
    warmupSeconds: read.one('BENCH_WARMUP', 3, 0),
    workers: read.one('BENCH_WORKERS', 2),
    servers: servers as ServerKind[],
    cluster: read.text('BENCH_CLUSTER') === 'off' ? [] : read.list('BENCH_CLUSTER', []),
    storm,
    repeat: read.one('BENCH_REPEAT', 1),
    startupRuns: read.one('BENCH_STARTUP', 5, 0),
    pin: pin === '1',
    out: path.resolve(read.text('BENCH_OUT') ?? path.join(RESULTS, `${stamp}.jsonl`)),
  };
}

export function machine(): Record<string, unknown> {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

export async function runBench(
  options: BenchOptions,
  log: (line: string) => void,
): Promise<BenchResult> {
  // A missing Redis is found before anything starts, not after the single-server runs.
  const redisBinary = options.cluster.length > 0 ? findRedisServer() : null;
  if (options.cluster.length > 0 && !redisBinary)
    throw new Error(
      'BENCH_CLUSTER needs redis-server (`apt-get install redis-server`, or REDIS_SERVER=<path>); set BENCH_CLUSTER=off to skip the cluster runs',
    );
  const limit = openFileLimit();
  const most = Math.max(
    ...options.clients,
    options.storm ? options.storm.watchers + options.storm.buyers : 0,
  );
  // The server holds one descriptor per client plus its own (files, the child's pipes, …).
  if (most + 200 > limit)
    throw new Error(
      `${most} clients need more open files than the hard limit (${limit}) allows; lower BENCH_CLIENTS`,
    );

  const cpuPlan = options.pin ? planCpus() : unpinned('not pinned (BENCH_PIN=0)');
  const host = machine();
  pinSelf(cpuPlan.load);
  const settings: RunSettings = {
    seconds: options.seconds,
    warmupSeconds: options.warmupSeconds,
    workers: options.workers,
    cpus: cpuPlan,
    connectConcurrency: 200,
  };
  mkdirSync(path.dirname(options.out), { recursive: true });
  const date = new Date().toISOString();
  const context = {
    date,
    machine: host,
    pinning: cpuPlan.note,
    seconds: options.seconds,
    workers: options.workers,
  };
  const write = (record: object): void =>
    appendFileSync(options.out, `${JSON.stringify({ ...context, ...record })}\n`);
  log(
    `forkcast bench ${date}: ${JSON.stringify(context.machine)}; ${cpuPlan.note}; open-file limit ${limit}`,
  );

  const results: ScenarioResult[] = [];
  const cluster: ClusterResult[] = [];
  const clusterPinning = clusterCpuNote(cpuPlan);
  if (options.cluster.length > 0) log(`  cluster runs: ${clusterPinning}`);
  const run = async (scenario: Scenario): Promise<void> => {
    const clients = scenario.watchers + scenario.buyers;
    log(`  ${scenario.name} ${scenario.kind}: ${clients} clients, tick ${scenario.tickMs} ms…`);
    const result = await runScenario(scenario, settings);
    results.push(result);
    write({ type: 'scenario', ...result });
  };

  /** The cluster runs of one client count and tick; none without BENCH_CLUSTER. */
  const runClusters = async (clients: number, tickMs: number): Promise<void> => {
    if (!redisBinary) return;
    for (const nodes of options.cluster) {
      log(`  fan-out cluster of ${nodes} nodes: ${clients} clients, tick ${tickMs} ms…`);
      const result = await runCluster(
        { name: 'fan-out', kind: 'cluster', nodes, watchers: clients, tickMs },
        settings,
        redisBinary,
      );
      if (result.leaderAfter !== result.leader)
        log(
          `    the leader changed during the run: node ${result.leader} before, ${result.leaderAfter ?? 'none agreed on'} after`,
        );
      cluster.push(result);
      write({ type: 'scenario', ...result, pinning: clusterPinning });
    }
  };

  // The SSE clients' row: by default 10,000 clients at 1 Hz.
  const sseRow = { clients: Math.max(...options.clients), tickMs: options.tickMs[0] };
  for (const tickMs of options.tickMs) {
    for (const clients of options.clients) {
      const sse = clients === sseRow.clients && tickMs === sseRow.tickMs;
      for (let round = 0; round < options.repeat; round++) {
        for (const kind of options.servers) {
          if (kind === 'sse' && !sse) continue;
          await run({
            name: 'fan-out',
            kind,
            watchers: clients,
            buyers: 0,
            buysPerSecond: 0,
            tickMs,
          });
        }
      }
      await runClusters(clients, tickMs);
    }
  }
  if (options.storm && options.servers.includes('forkcast')) {
    await run({
      name: 'buy-storm',
      kind: 'forkcast',
      ...options.storm,
      tickMs: options.tickMs[0] ?? 1000,
    });
  }
  const found = ratios(results);
  for (const ratio of found) write({ type: 'ratio', ...ratio });
  const medians = options.repeat > 1 ? medianRatios(found) : [];
  for (const ratio of medians) write({ type: 'median', rounds: options.repeat, ...ratio });
  const foundForCluster = clusterRatios(results, cluster);
  for (const ratio of foundForCluster) write({ type: 'ratio', ...ratio, pinning: clusterPinning });

  let startup: StartupFigures | null = null;
  if (options.startupRuns > 0) {
    log(`  start-up: ${options.startupRuns} runs…`);
    startup = await measureStartup(options.startupRuns, cpuPlan.server);
    write({ type: 'startup', ...startup });
  }
  return {
    results,
    ratios: found,
    medians,
    cluster,
    clusterRatios: foundForCluster,
    clusterPinning,
    startup,
  };
}

/** Where a cluster runs: with two cores, every node and Redis share the server's CPU. */
function clusterCpuNote(plan: CpuPlan): string {
  return plan.server
    ? `every node and Redis on CPU ${plan.server}, load on CPU ${plan.load}`
    : plan.note;
}

export function printReport(
  result: BenchResult,
  options: BenchOptions,
  log: (line: string) => void,
): void {
  log('');
  log(`Fan-out (window ${options.seconds} s per run; latency = arrival − server ts):`);
  log(fanOutTable(result.results));
  if (result.ratios.length > 0) {
    log('');
    log(
      'forkcast (sse: its /api/stream) ÷ the tutorial Socket.IO server and ÷ raw ws (same run; below 1× means forkcast did better):',
    );
    log(ratioTable(result.ratios));
  }
  if (result.medians.length > 0) {
    log('');
    log(`The same ratios, each the median over ${options.repeat} rounds:`);
    log(ratioTable(result.medians));
  }
  if (result.cluster.length > 0) {
    log('');
    log(
      `Cluster (the same clients round robin over N nodes sharing one Redis; ${result.clusterPinning}; CPU counts every node and Redis):`,
    );
    log(clusterTable(result.results, result.cluster));
    if (result.clusterRatios.length > 0) {
      log('');
      log('cluster ÷ raw ws (same run):');
      log(clusterRatioTable(result.clusterRatios));
    }
    log('');
    log(
      'Cluster nodes (latency and misses of each node’s own clients; the leader runs the ticker):',
    );
    log(clusterNodeTable(result.cluster));
  }
  if (result.results.some((each) => each.name === 'buy-storm')) {
    log('');
    log('Buy storm (forkcast; acked buys while others watch):');
    log(stormTable(result.results));
  }
  if (result.startup) {
    const { childForkMs, serverStartMs, bundleGzipBytes } = result.startup;
    const ms = (values: number[]): string =>
      `median ${median(values).toFixed(0)} ms (${values.map((v) => v.toFixed(0)).join(', ')})`;
    log('');
    log(`Ticker child fork → ready: ${ms(childForkMs)}`);
    log(`Server spawn → listening:  ${ms(serverStartMs)}`);
    const total = Object.values(bundleGzipBytes).reduce((sum, bytes) => sum + bytes, 0);
    log(
      `Client bundle gzip -9:     ${JSON.stringify(bundleGzipBytes)} = ${total.toLocaleString('en-US')} B`,
    );
  }
  log('');
  log(`Results: ${path.relative(process.cwd(), options.out)}`);
}

if (require.main === module) {
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const fail = (error: unknown): void => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exitCode = 1;
  };
  try {
    const options = optionsFromEnv(process.env);
    runBench(options, log).then((result) => printReport(result, options, log), fail);
  } catch (error) {
    fail(error);
  }
}
