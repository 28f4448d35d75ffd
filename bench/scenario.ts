/**
 * One measured run: a server, N clients spread over load workers, a warm-up, a window during
 * which deliveries, latencies and the server's CPU are counted, and a teardown. `drive` is the
 * part between starting the server and stopping it, which a cluster run (cluster.ts) shares.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';

import type { UpdatePayload } from '../protocol/events';
import { seedTickerState } from '../protocol/ipc';
import { spawnNode } from './processes';
import { cpuMicros, rssBytes, treeCpuMicros } from './proc';
import { serverBuyAckShares, startServer, startTicker } from './servers';
import { countOf, merge, summarize, type Histogram, type Summary } from './stats';
import type {
  OrchestratorMessage,
  ServerKind,
  WorkerMessage,
  WorkerPlan,
  WorkerReport,
} from './worker-protocol';

export interface Scenario {
  name: 'fan-out' | 'buy-storm';
  kind: ServerKind;
  /** Clients that only watch. */
  watchers: number;
  /** Clients that send buys (buy storm). */
  buyers: number;
  /** Total buys per second over all buyers. */
  buysPerSecond: number;
  tickMs: number;
}

export interface RunSettings {
  seconds: number;
  warmupSeconds: number;
  workers: number;
  cpus: { server: string | null; load: string | null };
  connectConcurrency: number;
}

/** What a run measured, whatever it ran against. */
export interface RunFigures {
  clients: number;
  seconds: number;
  /** Distinct updates the server broadcast during the window (from the seq range seen). */
  broadcasts: number;
  delivered: number;
  deliveredPerSecond: number;
  missed: number;
  late: number;
  outOfOrder: number;
  lost: number;
  latencyMs: Summary;
  serverCpuPercent: number;
  /**
   * CPU of the load workers over the window, in % of one core. Near 100 × the cores they
   * have, the clients themselves add to the latencies measured.
   */
  loadCpuPercent: number;
  /** The longest stall of any load worker's event loop in the window: late deliveries with a
   * stall as long are the clients', not the server's. */
  loadStallMs: number;
  cpuMicrosPerUpdate: number;
  memoryPerConnectionKB: number;
  serverStartMs: number;
  buysSent: number;
  acksOk: number;
  acksRejected: number;
  acksPerSecond: number;
  ackLatencyMs: Summary;
  /** forkcast's own count of buys acked within 10 / 25 ms of arrival (buy storm only). */
  serverAckWithin: { within10ms: number; within25ms: number } | null;
}

export interface ScenarioResult extends Scenario, RunFigures {}

/** What the clients connect to and which processes the run charges. */
export interface Target {
  /** The protocol the clients speak. */
  kind: ServerKind;
  /** Where the clients connect: see nodeOf. The ticker is started through the first. */
  ports: number[];
  /** Processes whose CPU, each with its children (a ticker child), the window counts. */
  cpuPids: number[];
  /** Processes whose resident memory growth is put down to the connections. */
  memoryPids: number[];
}

/** A driven run's raw figures, before they are summed up. */
export interface Measured {
  reports: WorkerReport[];
  /** CPU over the window in µs, one figure per `cpuPids` entry. */
  cpuMicros: number[];
  loadCpuMicros: number;
  /** Growth of resident memory from before connecting to after the warm-up, per `memoryPids`. */
  rssGrowth: number[];
}

const WORKER = path.join(__dirname, 'load-worker.js');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class Worker {
  private readonly waiting = new Map<WorkerMessage['type'], (message: WorkerMessage) => void>();
  private exitError: Error | null = null;

  constructor(readonly process: ChildProcess) {
    process.on('message', (message: WorkerMessage) => {
      this.waiting.get(message.type)?.(message);
      this.waiting.delete(message.type);
    });
    process.once('exit', (code, signal) => {
      this.exitError = new Error(`load worker exited (${signal ?? code})`);
    });
  }

  send(message: OrchestratorMessage): void {
    if (this.process.connected) this.process.send(message);
  }

  next<T extends WorkerMessage['type']>(
    type: T,
    timeoutMs: number,
  ): Promise<Extract<WorkerMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      if (this.exitError) return reject(this.exitError);
      // Whichever comes first settles the wait and undoes the other two.
      const settle = (error: Error | null, message?: WorkerMessage): void => {
        clearTimeout(timer);
        this.process.off('exit', onExit);
        this.waiting.delete(type);
        if (error) reject(error);
        else resolve(message as Extract<WorkerMessage, { type: T }>);
      };
      const onExit = (): void => settle(this.exitError ?? new Error('load worker exited'));
      const timer = setTimeout(
        () => settle(new Error(`load worker sent no "${type}" in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.process.once('exit', onExit);
      this.waiting.set(type, (message) => settle(null, message));
    });
  }
}

/**
 * Where a buy storm starts: the seed prices scaled down by 10^300. Every buy multiplies a
 * price by 1.1, so 20 s at 2,000 buys/s (about 13,300 per stock, a factor of 10^552) would
 * take the seed prices past the largest double, where forkcast rightly refuses further buys;
 * from here they end near 10^252 and every buy in the window is a real one.
 */
function stormState(ts: number): UpdatePayload {
  const seed = seedTickerState(ts);
  return {
    ...seed,
    stocks: seed.stocks.map(({ name, price }) => ({ name, price: price * 1e-300 })),
  };
}

/** Splits `total` into `parts` shares that differ by at most one. */
export function shares(total: number, parts: number): number[] {
  return Array.from(
    { length: parts },
    (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0),
  );
}

export async function runScenario(
  scenario: Scenario,
  settings: RunSettings,
): Promise<ScenarioResult> {
  const server = await startServer(scenario.kind, {
    tickMs: scenario.tickMs,
    cpus: settings.cpus.server,
    // The buy storm is about throughput; the per-socket limit stays at its default (50/s),
    // which the storm's per-buyer rate stays under.
    ...(scenario.buyers > 0 ? { state: stormState(Date.now()) } : {}),
  });
  try {
    const measured = await drive(scenario, settings, {
      kind: scenario.kind,
      ports: [server.port],
      cpuPids: [server.pid],
      memoryPids: [server.pid],
    });
    const serverAckWithin =
      scenario.kind === 'forkcast' && scenario.buyers > 0
        ? await serverBuyAckShares(server.port)
        : null;
    return {
      ...scenario,
      ...summarizeRun(settings, {
        reports: measured.reports,
        cpuMicros: sumOf(measured.cpuMicros),
        loadCpuMicros: measured.loadCpuMicros,
        rssGrowth: sumOf(measured.rssGrowth),
        serverStartMs: server.startedInMs,
        serverAckWithin,
      }),
    };
  } finally {
    await server.stop();
  }
}

export const sumOf = (values: readonly number[]): number =>
  values.reduce((sum, value) => sum + value, 0);

export type WorkerShare = Pick<
  WorkerPlan,
  'watchers' | 'buyers' | 'buysPerSecond' | 'firstClient'
> & { niceness: number };

/**
 * Which clients each load worker opens. Watchers are spread over the load workers. Buyers get
 * a worker of their own, as they would be other machines in real life: inside a process that
 * also reads thousands of watchers' updates, an ack waits behind each burst of them, and the
 * figure would measure the load generator instead of the server.
 * On a machine with one core for all the clients, the watchers also run at a lower priority
 * during a storm: the buyers' worker then gets the CPU as soon as an ack arrives, instead of
 * waiting out a watcher's time slice.
 */
export function workerShares(
  scenario: Pick<Scenario, 'watchers' | 'buyers' | 'buysPerSecond'>,
  workers: number,
): WorkerShare[] {
  const watcherNiceness = scenario.buyers > 0 ? 10 : 0;
  const plans = shares(scenario.watchers, workers).map((watchers) => ({
    watchers,
    buyers: 0,
    buysPerSecond: 0,
    niceness: watcherNiceness,
  }));
  if (scenario.buyers > 0)
    plans.push({
      watchers: 0,
      buyers: scenario.buyers,
      buysPerSecond: scenario.buysPerSecond,
      niceness: 0,
    });
  // Numbered through the run, so that nodeOf spreads all the clients, not each worker's.
  let firstClient = 0;
  return plans.map((plan) => {
    const share = { ...plan, firstClient };
    firstClient += plan.watchers + plan.buyers;
    return share;
  });
}

/**
 * Connects the scenario's clients to a started target, starts its ticker, and measures a
 * window. Leaves the target running: the caller started it and stops it.
 */
export async function drive(
  scenario: Scenario,
  settings: RunSettings,
  target: Target,
): Promise<Measured> {
  const workers: Worker[] = [];
  try {
    // Let the server settle (the ticker child's start-up) before its baseline memory is read.
    await sleep(500);
    const rssBefore = target.memoryPids.map(rssBytes);

    const total = scenario.watchers + scenario.buyers;
    for (const { niceness, ...share } of workerShares(scenario, settings.workers)) {
      const plan: WorkerPlan = {
        ...share,
        kind: target.kind,
        ports: target.ports,
        connectConcurrency: settings.connectConcurrency,
        lateAfterMs: scenario.tickMs,
      };
      const worker = new Worker(
        spawnNode(WORKER, {
          cpus: settings.cpus.load,
          niceness,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
      workers.push(worker);
      worker.send({ type: 'plan', plan });
    }
    const connectTimeout = 30_000 + total * 10;
    const connected = await Promise.all(
      workers.map((worker) => worker.next('connected', connectTimeout)),
    );
    const failed = connected.reduce((sum, message) => sum + message.failed, 0);
    if (failed > 0) {
      const reason = connected.find((message) => message.firstError)?.firstError ?? 'unknown';
      throw new Error(`${failed} of ${total} clients failed to connect (first error: ${reason})`);
    }
    // Ticking starts once everyone is connected, so the connection storm and the fan-out do
    // not compete and every run measures the same steady state.
    await startTicker(target.kind, target.ports[0] ?? Number.NaN);

    await sleep(settings.warmupSeconds * 1000);
    const rssConnected = target.memoryPids.map(rssBytes);

    // Workers get the window ahead of time; counting is by the server's ts, so IPC delays
    // do not matter.
    const from = Date.now() + 300;
    const to = from + settings.seconds * 1000;
    for (const worker of workers) worker.send({ type: 'measure', from, to });
    await sleep(from - Date.now());
    const workerPids = workers.flatMap((worker) => worker.process.pid ?? []);
    const loadCpu = (): number => sumOf(workerPids.map(cpuMicros));
    const cpuBefore = target.cpuPids.map(treeCpuMicros);
    const loadBefore = loadCpu();
    await sleep(to - Date.now());
    const cpuAfter = target.cpuPids.map(treeCpuMicros);
    const loadAfter = loadCpu();
    // Late updates and acks still in flight get until `by` to arrive before the count closes.
    const replies = workers.map((worker) => worker.next('report', 30_000));
    const by = Date.now() + Math.max(1_000, 2 * scenario.tickMs);
    for (const worker of workers) worker.send({ type: 'report', by });
    return {
      reports: (await Promise.all(replies)).map((reply) => reply.report),
      cpuMicros: cpuAfter.map((after, i) => after - (cpuBefore[i] ?? Number.NaN)),
      loadCpuMicros: loadAfter - loadBefore,
      rssGrowth: rssConnected.map((after, i) => after - (rssBefore[i] ?? Number.NaN)),
    };
  } finally {
    for (const worker of workers) {
      worker.send({ type: 'close' });
      const exited = worker.process.exitCode !== null || worker.process.signalCode !== null;
      if (!exited) await new Promise((resolve) => worker.process.once('exit', resolve));
    }
  }
}

/** The figures of a run, from its workers' reports and the totals of what it charged. */
export function summarizeRun(
  settings: Pick<RunSettings, 'seconds'>,
  measured: {
    reports: WorkerReport[];
    cpuMicros: number;
    loadCpuMicros: number;
    rssGrowth: number;
    serverStartMs: number;
    serverAckWithin: RunFigures['serverAckWithin'];
  },
): RunFigures {
  const { reports, cpuMicros, loadCpuMicros, rssGrowth, serverStartMs, serverAckWithin } = measured;
  const sum = (pick: (report: WorkerReport) => number): number =>
    reports.reduce((total, report) => total + pick(report), 0);
  const seqs = new Set(reports.flatMap((report) => report.seqs));
  const lowest = Math.min(...seqs);
  const highest = Math.max(...seqs);
  // seq grows by exactly one per broadcast, so the range counts broadcasts nobody received too.
  const broadcasts = seqs.size === 0 ? 0 : highest - lowest + 1;
  const clients = sum((report) => report.connected);
  const delivered = sum((report) => report.delivered);
  const latency: Histogram = new Map();
  const ackLatency: Histogram = new Map();
  for (const report of reports) {
    merge(latency, report.latency);
    merge(ackLatency, report.ackLatency);
  }
  const acksOk = sum((report) => report.acksOk);
  const acksRejected = sum((report) => report.acksRejected);
  return {
    clients,
    seconds: settings.seconds,
    broadcasts,
    delivered,
    deliveredPerSecond: delivered / settings.seconds,
    missed: broadcasts * clients - delivered,
    late: sum((report) => report.late),
    outOfOrder: sum((report) => report.outOfOrder),
    lost: sum((report) => report.lost),
    latencyMs: summarize(latency),
    serverCpuPercent: (cpuMicros / (settings.seconds * 1e6)) * 100,
    loadCpuPercent: (loadCpuMicros / (settings.seconds * 1e6)) * 100,
    loadStallMs: Math.max(0, ...reports.map((report) => report.loopDelayMaxMs)),
    cpuMicrosPerUpdate: delivered > 0 ? cpuMicros / delivered : Number.NaN,
    memoryPerConnectionKB: clients > 0 ? rssGrowth / clients / 1024 : Number.NaN,
    serverStartMs,
    buysSent: sum((report) => report.buysSent),
    acksOk,
    acksRejected,
    acksPerSecond: countOf(ackLatency) / settings.seconds,
    ackLatencyMs: summarize(ackLatency),
    serverAckWithin,
  };
}
