/** Starts a server under test (forkcast's built server or a baseline) on a free port. */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { io } from 'socket.io-client';

import { SOCKET_PATH, type UpdatePayload } from '../protocol/events';
import { spawnNode, stopProcess } from './processes';
import type { ServerKind } from './worker-protocol';

/** The product's own build (npm run build), from bench/build/bench/ where this runs. */
export const PRODUCT_DIST = path.resolve(__dirname, '..', '..', '..', 'dist');
const SERVER_ENTRY: Record<ServerKind, string> = {
  forkcast: path.join(PRODUCT_DIST, 'server', 'main.js'),
  sse: path.join(PRODUCT_DIST, 'server', 'main.js'),
  tutorial: path.join(__dirname, 'tutorial-server.js'),
  raw: path.join(__dirname, 'raw-server.js'),
};

export interface RunningServer {
  kind: ServerKind;
  port: number;
  pid: number;
  /** Milliseconds from spawn to the server saying it listens. */
  startedInMs: number;
  stop(): Promise<void>;
}

export async function startServer(
  kind: ServerKind,
  {
    tickMs,
    cpus,
    env = {},
    state,
  }: { tickMs: number; cpus: string | null; env?: NodeJS.ProcessEnv; state?: UpdatePayload },
): Promise<RunningServer> {
  // A fresh state file: every run starts from the seed prices (or `state`), stopped.
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-bench-'));
  if (state) writeFileSync(path.join(dir, 'state.json'), JSON.stringify(state));
  const began = performance.now();
  const child = spawnNode(SERVER_ENTRY[kind], {
    cpus,
    // For looking inside a run, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
    nodeArgs: (process.env['BENCH_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      TICK_MS: String(tickMs),
      STATE_FILE: path.join(dir, 'state.json'),
      LOG_LEVEL: 'info',
      // A single node unless the caller says otherwise, whatever the bench's own environment.
      REDIS_URL: '',
      ...env,
    },
  });
  const cleanup = async (): Promise<void> => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const port = await listeningPort(child);
    const { pid } = child;
    if (pid === undefined) throw new Error(`${kind} server has no pid`);
    return { kind, port, pid, startedInMs: performance.now() - began, stop: cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Reads the server's log until it names its port; fails with its stderr if it exits first. */
function listeningPort(child: ChildProcess): Promise<number> {
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(
      () => reject(new Error(`server did not listen in 30 s\n${stderr}`)),
      30_000,
    );
    lines.on('line', (line) => {
      const port = portIn(line);
      if (port === null) return;
      clearTimeout(timer);
      // Stop reading lines but keep draining the log, so a chatty server never blocks on a
      // full pipe.
      lines.close();
      child.stdout?.resume();
      resolve(port);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${signal ?? code}) before listening\n${stderr}`));
    });
  });
}

/** The port in forkcast's "listening" log line (`url`) or a baseline's (`port`). */
function portIn(line: string): number | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  if ('port' in parsed && typeof parsed.port === 'number') return parsed.port;
  if ('url' in parsed && typeof parsed.url === 'string' && URL.canParse(parsed.url))
    return Number(new URL(parsed.url).port) || null;
  return null;
}

/**
 * Starts the server's ticker: forkcast's (whatever its clients read) and the tutorial server's
 * with a Socket.IO `start`, as any client would; the raw baseline's with a POST.
 */
export async function startTicker(kind: ServerKind, port: number): Promise<void> {
  if (kind === 'raw') {
    const response = await fetch(`http://127.0.0.1:${port}/start`, { method: 'POST' });
    if (!response.ok) throw new Error(`raw baseline did not start: HTTP ${response.status}`);
    return;
  }
  const socket = io(`http://127.0.0.1:${port}`, {
    path: SOCKET_PATH,
    transports: ['websocket'],
    reconnection: false,
  });
  try {
    const ack: unknown = await socket.timeout(10_000).emitWithAck('start');
    if (!(ack as { ok?: unknown }).ok) throw new Error(`start refused: ${JSON.stringify(ack)}`);
  } finally {
    socket.disconnect();
  }
}

/**
 * From forkcast's own /metrics: the share of buys the server acknowledged within 10 ms and
 * within 25 ms of their arrival (two of its histogram's bucket bounds). Set beside the
 * latency the clients measured, it tells the server's part from the clients' own queueing.
 */
export async function serverBuyAckShares(
  port: number,
): Promise<{ within10ms: number; within25ms: number } | null> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (!response.ok) return null;
  const buckets = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^forkcast_op_ack_seconds_bucket\{([^}]*)\} (\d+)$/.exec(line);
    const labels = match?.[1] ?? '';
    if (!match?.[2] || !labels.includes('op="buy"') || !labels.includes('transport="socket"'))
      continue;
    const le = /le="([^"]+)"/.exec(labels)?.[1];
    if (le) buckets.set(le, Number(match[2]));
  }
  const total = buckets.get('+Inf');
  const within10 = buckets.get('0.01');
  const within25 = buckets.get('0.025');
  if (!total || within10 === undefined || within25 === undefined) return null;
  return { within10ms: within10 / total, within25ms: within25 / total };
}
