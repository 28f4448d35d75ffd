/**
 * Whether a process still runs, seen from outside it. An orphan that exits is re-parented to
 * pid 1, and where pid 1 does not reap (as in this project's CI VMs) it stays a zombie for
 * good; kill(pid, 0) succeeds on a zombie, so a zombie counts as exited here.
 */
import { readFileSync } from 'node:fs';

import { delay } from './recorder';

export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // No procfs (macOS): kill(pid, 0) is all we have.
  return statFields(pid)?.[0] !== 'Z';
}

/**
 * The fields of /proc/<pid>/stat from the third (state) on, or null without procfs or once
 * the process is gone. The second field, the command name in parentheses, may hold spaces or
 * parentheses itself, so the fields are counted from the last ')'.
 */
export function statFields(pid: number | 'self'): string[] | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * Polls until the process is gone and resolves with how long that took, or rejects at the
 * deadline. Polling is the only way to watch a process that is not our child.
 */
export async function waitForProcessGone(pid: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (processRunning(pid)) {
    if (performance.now() - started > timeoutMs) {
      throw new Error(`process ${pid} still runs ${timeoutMs} ms later`);
    }
    await delay(10);
  }
  return performance.now() - started;
}

/**
 * CPU time, in milliseconds, that a process used itself and that its children that have exited
 * and been reaped used, or null without procfs.
 */
export function cpuMs(pid: number): { own: number; children: number } | null {
  // Fields after "(comm)": state is field 3, utime 14, stime 15, cutime 16 and cstime 17
  // (1-based, man 5 proc), in ticks of 10 ms (USER_HZ is 100 on every Linux this runs on).
  const ticks = statFields(pid)?.slice(11, 15).map(Number);
  if (!ticks) return null;
  const [utime = 0, stime = 0, cutime = 0, cstime = 0] = ticks;
  return { own: (utime + stime) * 10, children: (cutime + cstime) * 10 };
}

/** Older names of spawnServer and killServers, which track every server and sweep its leftovers. */
export { spawnServer as spawnTracked, killServers as cleanUpServers } from './server-process';
