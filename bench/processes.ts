/**
 * Starting the processes under test: pinned to their own CPUs where `taskset` exists (so the
 * load generator never competes with the server it measures), with the open-file soft limit
 * raised to the hard limit (each connection is a file descriptor on both ends).
 */
import { spawn, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { availableParallelism } from 'node:os';

const hasTaskset = spawnSync('taskset', ['-V']).status === 0;

export interface CpuPlan {
  /** CPU list for the server (taskset syntax), or null when pinning is not possible. */
  server: string | null;
  /** CPU list for the load workers and the orchestrator. */
  load: string | null;
  note: string;
}

export const unpinned = (note: string): CpuPlan => ({ server: null, load: null, note });

/** The server gets CPU 0 alone; the load generator gets the rest. */
export function planCpus(): CpuPlan {
  const cpus = availableParallelism();
  if (!hasTaskset) return unpinned('taskset not found: not pinned');
  if (cpus < 2) return unpinned('one CPU: not pinned');
  const load = cpus === 2 ? '1' : `1-${cpus - 1}`;
  return { server: '0', load, note: `server on CPU 0, load on CPU ${load}` };
}

/** The open-file hard limit: the most connections one process can hold. */
export function openFileLimit(): number {
  const result = spawnSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' });
  const value = result.stdout.trim();
  return value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value);
}

/** Pins this process (every thread) to `cpus`, so the orchestrator stays off the server's CPU. */
export function pinSelf(cpus: string | null): void {
  pinProcess(process.pid, cpus);
}

/** Pins a running process, every thread of it, to `cpus` (for one the bench did not spawn). */
export function pinProcess(pid: number, cpus: string | null): void {
  if (cpus) spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * Spawns `node <script>` through sh (to raise the soft open-file limit) and taskset (to pin
 * it). Both exec, so the returned pid is node's own.
 */
export function spawnNode(
  script: string,
  options: {
    cpus: string | null;
    env?: NodeJS.ProcessEnv;
    stdio: StdioOptions;
    nodeArgs?: string[];
    /** A niceness (nice -n): above 0 yields the CPU to processes that need it sooner. */
    niceness?: number;
  },
): ChildProcess {
  const pin = [
    ...(options.niceness ? ['nice', '-n', String(options.niceness)] : []),
    ...(options.cpus ? ['taskset', '-c', options.cpus] : []),
  ];
  return spawn(
    'sh',
    [
      '-c',
      'ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      'sh',
      ...pin,
      process.execPath,
      ...(options.nodeArgs ?? []),
      script,
    ],
    { env: options.env ?? process.env, stdio: options.stdio },
  );
}

/** Resolves when the process has exited; SIGKILLs it if it has not within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
