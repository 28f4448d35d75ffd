/**
 * Cluster runs: the same clients spread round robin over K forkcast nodes that share one fresh
 * redis-server, the leader's ticker started through node 0 (a follower forwards the start),
 * measured like a single server. A cluster is charged with every node's CPU (the leader's
 * ticker child included) plus Redis's, and with every node's memory growth.
 */
import { createClient } from 'redis';

import { pinProcess } from './processes';
import { startRedis, type RedisServer } from './redis-server';
import {
  drive,
  summarizeRun,
  sumOf,
  type Measured,
  type RunFigures,
  type RunSettings,
} from './scenario';
import { startServer, type RunningServer } from './servers';
import { merge, summarize, type Histogram, type Summary } from './stats';

export interface ClusterScenario {
  name: 'fan-out';
  kind: 'cluster';
  /** forkcast processes sharing the Redis. */
  nodes: number;
  watchers: number;
  tickMs: number;
}

type Role = 'leader' | 'follower';

interface NodeFigures {
  /** The node's number: client i of the run is on node nodeOf(i, nodes). */
  node: number;
  /** Its role when the window began. */
  role: Role;
  clients: number;
  delivered: number;
  deliveredPerSecond: number;
  /** Updates of the window (the seq range any client saw) that this node's clients lacked. */
  missed: number;
  late: number;
  latencyMs: Summary;
  /** The node process and its children (the leader's ticker child), in % of one core. */
  cpuPercent: number;
  memoryPerConnectionKB: number;
}

/**
 * Shaped like a fan-out scenario line, with these differences: `serverCpuPercent` and
 * `cpuMicrosPerUpdate` count every node and Redis; `memoryPerConnectionKB` every node's growth
 * (not Redis's, which holds no connection of a client).
 */
export interface ClusterResult extends ClusterScenario, RunFigures {
  buyers: 0;
  buysPerSecond: 0;
  /** Redis's part of the totals. */
  redisCpuPercent: number;
  redisCpuMicrosPerUpdate: number;
  /** From spawning the nodes until every one of them named the same leader. */
  leaderElectedMs: number;
  /** The leader when the window began, and after the run (null: no single leader then). */
  leader: number;
  leaderAfter: number | null;
  perNode: NodeFigures[];
}

/** A leader election and its ticker child get this long; the lease's own takeover is 3 s. */
const LEADER_TIMEOUT_MS = 15_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runCluster(
  scenario: ClusterScenario,
  settings: RunSettings,
  redisBinary: string,
): Promise<ClusterResult> {
  const cluster = await startCluster(scenario.nodes, {
    tickMs: scenario.tickMs,
    cpus: settings.cpus.server,
    redisBinary,
  });
  try {
    const measured = await drive(
      {
        name: 'fan-out',
        kind: 'forkcast',
        watchers: scenario.watchers,
        buyers: 0,
        buysPerSecond: 0,
        tickMs: scenario.tickMs,
      },
      settings,
      {
        kind: 'forkcast',
        ports: cluster.ports,
        cpuPids: [...cluster.pids, cluster.redisPid],
        memoryPids: cluster.pids,
      },
    );
    return summarizeCluster(scenario, settings, measured, {
      leader: cluster.leader,
      leaderAfter: leaderOf(await Promise.all(cluster.ports.map(health))),
      serverStartMs: cluster.serverStartMs,
      leaderElectedMs: cluster.leaderElectedMs,
    });
  } finally {
    await cluster.stop();
  }
}

interface RunningCluster {
  ports: number[];
  pids: number[];
  redisPid: number;
  leader: number;
  /** The slowest node's spawn → listening. */
  serverStartMs: number;
  leaderElectedMs: number;
  stop(): Promise<void>;
}

async function startCluster(
  nodes: number,
  { tickMs, cpus, redisBinary }: { tickMs: number; cpus: string | null; redisBinary: string },
): Promise<RunningCluster> {
  const redis = await startRedis(redisBinary);
  const servers: RunningServer[] = [];
  let leader: number | null = null;
  const stop = async (): Promise<void> => {
    // Followers first: a leader stopped first would hand the ticker to a node about to stop.
    await Promise.all(servers.filter((_, i) => i !== leader).map((server) => server.stop()));
    await servers[leader ?? -1]?.stop();
    await redis.dispose();
  };
  try {
    const redisPid = await prepareRedis(redis);
    pinProcess(redisPid, cpus);
    const began = performance.now();
    const started = await Promise.allSettled(
      Array.from({ length: nodes }, () =>
        startServer('forkcast', { tickMs, cpus, env: { REDIS_URL: redis.url } }),
      ),
    );
    for (const each of started) if (each.status === 'fulfilled') servers.push(each.value);
    const failed = started.find((each) => each.status === 'rejected');
    if (failed) throw failed.reason;
    const ports = servers.map((server) => server.port);
    leader = await electedLeader(ports, LEADER_TIMEOUT_MS);
    return {
      ports,
      pids: servers.map((server) => server.pid),
      redisPid,
      leader,
      serverStartMs: Math.max(...servers.map((server) => server.startedInMs)),
      leaderElectedMs: performance.now() - began,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Redis's pid (for its CPU and pinning), and fsync once a second. bench/redis-server.ts fsyncs
 * every write, which the tests want; a production Redis (compose.yaml, docs/operating-a-cluster.md)
 * runs with Redis's default `everysec`, and the benchmark measures that.
 */
async function prepareRedis(redis: RedisServer): Promise<number> {
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    await client.configSet('appendfsync', 'everysec');
    const pid = Number(infoField(await client.info('server'), 'process_id'));
    if (!Number.isInteger(pid) || pid <= 0) throw new Error('Redis did not say its process_id');
    return pid;
  } finally {
    await client.close();
  }
}

/** One `name:value` line of Redis's INFO text, or null. */
function infoField(info: string, name: string): string | null {
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon) === name) return line.slice(colon + 1).trim();
  }
  return null;
}

/** A node's /healthz JSON (503 while degraded still carries it), or null if it gave none. */
async function health(port: number): Promise<unknown> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
  } catch {
    return null;
  }
}

async function electedLeader(ports: number[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const healths = await Promise.all(ports.map(health));
    const leader = leaderOf(healths);
    if (leader !== null) return leader;
    if (Date.now() > deadline)
      throw new Error(
        `${ports.length} nodes agreed on no leader in ${timeoutMs / 1000} s: ${JSON.stringify(healths)}`,
      );
    await sleep(100);
  }
}

interface NodeHealth {
  status: string;
  role: string;
  node: string;
  leader: string | null;
  pid: number | null;
}

function asNodeHealth(value: unknown): NodeHealth | null {
  if (typeof value !== 'object' || value === null) return null;
  const { status, role, node, leader, pid } = value as Record<string, unknown>;
  if (typeof status !== 'string' || typeof role !== 'string' || typeof node !== 'string')
    return null;
  return {
    status,
    role,
    node,
    leader: typeof leader === 'string' ? leader : null,
    pid: typeof pid === 'number' ? pid : null,
  };
}

/**
 * The index of the cluster's leader when every node is healthy and they agree on it: exactly
 * one says `leader` and has a ticker child, and every other one is a follower naming it.
 * Null otherwise (still electing, a node not up, two leaders, …).
 */
function leaderOf(healths: readonly unknown[]): number | null {
  const nodes = healths.map(asNodeHealth);
  const leaders = nodes.flatMap((node, i) => (node?.role === 'leader' ? [i] : []));
  const [leader] = leaders;
  const leaderNode = nodes[leader ?? -1];
  if (leaders.length !== 1 || leader === undefined || !leaderNode?.pid) return null;
  const agreed = nodes.every(
    (node, i) =>
      node?.status === 'ok' &&
      (i === leader || (node.role === 'follower' && node.leader === leaderNode.node)),
  );
  return agreed ? leader : null;
}

/**
 * The figures of a cluster run. `measured.cpuMicros` holds the nodes' CPU in node order, then
 * Redis's; `measured.rssGrowth` the nodes'.
 */
function summarizeCluster(
  scenario: ClusterScenario,
  settings: Pick<RunSettings, 'seconds'>,
  measured: Measured,
  run: {
    leader: number;
    leaderAfter: number | null;
    serverStartMs: number;
    leaderElectedMs: number;
  },
): ClusterResult {
  const { reports, cpuMicros, rssGrowth } = measured;
  if (cpuMicros.length !== scenario.nodes + 1 || rssGrowth.length !== scenario.nodes)
    throw new Error(
      `expected CPU of ${scenario.nodes} nodes and Redis, got ${cpuMicros.length} figures`,
    );
  const redisCpu = cpuMicros[scenario.nodes] ?? Number.NaN;
  const windowMicros = settings.seconds * 1e6;
  const figures = summarizeRun(settings, {
    reports,
    cpuMicros: sumOf(cpuMicros),
    loadCpuMicros: measured.loadCpuMicros,
    rssGrowth: sumOf(rssGrowth),
    serverStartMs: run.serverStartMs,
    serverAckWithin: null,
  });
  const perNode = Array.from({ length: scenario.nodes }, (_, node): NodeFigures => {
    const mine = reports.flatMap((report) => report.nodes[node] ?? []);
    const clients = sumOf(mine.map((each) => each.connected));
    const delivered = sumOf(mine.map((each) => each.delivered));
    const latency: Histogram = new Map();
    for (const each of mine) merge(latency, each.latency);
    return {
      node,
      role: node === run.leader ? 'leader' : 'follower',
      clients,
      delivered,
      deliveredPerSecond: delivered / settings.seconds,
      missed: figures.broadcasts * clients - delivered,
      late: sumOf(mine.map((each) => each.late)),
      latencyMs: summarize(latency),
      cpuPercent: ((cpuMicros[node] ?? Number.NaN) / windowMicros) * 100,
      memoryPerConnectionKB:
        clients > 0 ? (rssGrowth[node] ?? Number.NaN) / clients / 1024 : Number.NaN,
    };
  });
  return {
    ...scenario,
    buyers: 0,
    buysPerSecond: 0,
    ...figures,
    redisCpuPercent: (redisCpu / windowMicros) * 100,
    redisCpuMicrosPerUpdate: figures.delivered > 0 ? redisCpu / figures.delivered : Number.NaN,
    leaderElectedMs: run.leaderElectedMs,
    leader: run.leader,
    leaderAfter: run.leaderAfter,
    perNode,
  };
}
