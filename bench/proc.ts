/**
 * What the kernel says a process used: CPU time from /proc/<pid>/stat (user + system, all
 * threads) and resident memory from /proc/<pid>/status. Linux only, like the benchmark.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** Clock ticks per second (USER_HZ), the unit of utime / stime; 100 on every Linux seen. */
function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return ticksPerSecond;
}

/**
 * Parses a /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
 * spaces or parentheses itself, so fields are counted from the last ')'.
 */
function parseStat(line: string): { utime: number; stime: number } {
  const rest = line.slice(line.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime))
    throw new Error(`unexpected /proc stat line: ${line.slice(0, 80)}`);
  return { utime, stime };
}

/** Resident set size in bytes from a /proc/<pid>/status text. */
function parseRss(status: string): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match?.[1]) throw new Error('no VmRSS line in /proc status');
  return Number(match[1]) * 1024;
}

/** User + system CPU time of one process, in microseconds. */
export function cpuMicros(pid: number): number {
  const { utime, stime } = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return ((utime + stime) * 1e6) / clockTicks();
}

export function rssBytes(pid: number): number {
  return parseRss(readFileSync(`/proc/${pid}/status`, 'utf8'));
}

/** Direct children of a process (the server's ticker child). */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** CPU of a process and its children, the unit the benchmark charges a server with. */
export function treeCpuMicros(pid: number): number {
  return [pid, ...childPids(pid)].reduce((sum, each) => sum + cpuMicros(each), 0);
}
