/**
 * `npm run bench`: forkcast's server against a raw `ws` baseline, back to back in one run,
 * for each client count and tick rate, then a buy storm and the start-up figures. Prints
 * tables with forkcast ÷ raw ratios and appends one JSON line per run to the results file.
 *
 * Settings (environment):
 *   BENCH_CLIENTS   client counts, comma-separated        (1000,5000,10000)
 *   TICK_MS         tick intervals in ms, comma-separated (1000,100: 1 Hz and 10 Hz)
 *   BENCH_SECONDS   measured window per run               (20)
 *   BENCH_WARMUP    seconds between connecting and measuring (3)
 *   BENCH_WORKERS   load worker processes                 (2)
 *   BENCH_SERVERS   which servers                         (forkcast,raw)
 *   BENCH_STORM     buy storm "watchers,buyers,buys/s", or "off" (5000,100,2000)
 *   BENCH_STARTUP   start-up runs, 0 to skip              (5)
 *   BENCH_OUT       results file (JSON lines)             (bench/results/<time>.jsonl)
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import path from 'node:path';

import { openFileLimit, pinSelf, planCpus } from './processes';
import { fanOutTable, ratios, ratioTable, stormTable, type Ratio } from './report';
import { runScenario, type RunSettings, type Scenario, type ScenarioResult } from './scenario';
import { measureStartup, median, type StartupFigures } from './startup';
import type { ServerKind } from './worker-protocol';

export interface BenchOptions {
  clients: number[];
  tickMs: number[];
  seconds: number;
  warmupSeconds: number;
  workers: number;
  servers: ServerKind[];
  storm: { watchers: number; buyers: number; buysPerSecond: number } | null;
  startupRuns: number;
  out: string;
}

export interface BenchResult {
  results: ScenarioResult[];
  ratios: Ratio[];
  startup: StartupFigures | null;
}

const ROOT = path.resolve(__dirname, '..', '..');

function list(value: string | undefined, fallback: number[]): number[] {
  if (!value) return fallback;
  const numbers = value.split(',').map((part) => Number(part.trim()));
  if (numbers.some((number) => !Number.isInteger(number) || number <= 0))
    throw new Error(`expected positive integers separated by commas, got "${value}"`);
  return numbers;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv): BenchOptions {
  const storm = env['BENCH_STORM'] ?? '5000,100,2000';
  const servers = (env['BENCH_SERVERS'] ?? 'forkcast,raw').split(',').map((name) => name.trim());
  for (const server of servers)
    if (server !== 'forkcast' && server !== 'raw')
      throw new Error(`unknown server "${server}" in BENCH_SERVERS`);
  const [watchers, buyers, buysPerSecond] = storm === 'off' ? [] : list(storm, []);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    clients: list(env['BENCH_CLIENTS'], [1000, 5000, 10000]),
    tickMs: list(env['TICK_MS'], [1000, 100]),
    seconds: list(env['BENCH_SECONDS'], [20])[0] ?? 20,
    warmupSeconds: list(env['BENCH_WARMUP'], [3])[0] ?? 3,
    workers: list(env['BENCH_WORKERS'], [2])[0] ?? 2,
    servers: servers as ServerKind[],
    storm:
      watchers !== undefined && buyers !== undefined && buysPerSecond !== undefined
        ? { watchers, buyers, buysPerSecond }
        : null,
    startupRuns: env['BENCH_STARTUP'] === '0' ? 0 : (list(env['BENCH_STARTUP'], [5])[0] ?? 5),
    out: path.resolve(env['BENCH_OUT'] ?? path.join(ROOT, 'bench', 'results', `${stamp}.jsonl`)),
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

  const cpuPlan = planCpus();
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
  const run = async (scenario: Scenario): Promise<void> => {
    const clients = scenario.watchers + scenario.buyers;
    log(`  ${scenario.name} ${scenario.kind}: ${clients} clients, tick ${scenario.tickMs} ms…`);
    const result = await runScenario(scenario, settings);
    results.push(result);
    write({ type: 'scenario', ...result });
  };

  for (const tickMs of options.tickMs) {
    for (const clients of options.clients) {
      for (const kind of options.servers) {
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

  let startup: StartupFigures | null = null;
  if (options.startupRuns > 0) {
    log(`  start-up: ${options.startupRuns} runs…`);
    startup = await measureStartup(options.startupRuns, cpuPlan.server);
    write({ type: 'startup', ...startup });
  }
  return { results, ratios: found, startup };
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
    log('forkcast ÷ raw ws (same run; below 1× means forkcast did better):');
    log(ratioTable(result.ratios));
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
  const options = optionsFromEnv(process.env);
  runBench(options, log).then(
    (result) => printReport(result, options, log),
    (error: unknown) => {
      process.stderr.write(
        `bench failed: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
