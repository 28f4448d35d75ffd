/** Processes seen from outside. An orphan that exits may never be reaped by pid 1 (as in this
 * project's CI VMs), and kill(pid, 0) succeeds on a zombie: it counts as gone. */
import { readFileSync } from 'node:fs';

import { delay } from './recorder';

export function processRunning(pid: number): boolean {
  try {
    return process.kill(pid, 0) && statFields(pid)?.[0] !== 'Z'; // no procfs (macOS): kill() alone
  } catch {
    return false;
  }
}

/** /proc/<pid>/<file>, or null: the process is gone, or there is no procfs. */
export function procFile(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return null;
  }
}

/** The fields of /proc/<pid>/stat from the third (state) on, or null. The second, the command
 * name in parentheses, may hold spaces or parentheses itself: they count from the last ')'. */
export function statFields(pid: number): string[] | null {
  const stat = procFile(pid, 'stat');
  return stat?.slice(stat.lastIndexOf(')') + 2).split(' ') ?? null;
}

/** Polls, the only way to watch a process that is not our child, until it is gone. */
export async function waitForProcessGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (processRunning(pid)) {
    if (performance.now() > deadline)
      throw new Error(`process ${pid} still runs ${timeoutMs} ms later`);
    await delay(10);
  }
}

/** CPU milliseconds a process used itself, and its children that exited and were reaped. */
export function cpuMs(pid: number): { own: number; children: number } | null {
  // utime, stime, cutime and cstime: fields 14 to 17 of stat (man 5 proc), in ticks of 10 ms.
  const ticks = statFields(pid)?.slice(11, 15).map(Number);
  if (!ticks) return null;
  const [utime = 0, stime = 0, cutime = 0, cstime = 0] = ticks;
  return { own: (utime + stime) * 10, children: (cutime + cstime) * 10 };
}
