/** The compiled server (dist/server/main.js) in its own process, its JSON log lines recorded. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { ROOT } from '../../server/paths';
import { procFile } from './processes';
import { Recorder, withDeadline } from './recorder';

const SERVER_MAIN = path.join(ROOT, 'dist', 'server', 'main.js');

export type LogLine = Record<string, unknown>;
export type ServerProcess = ReturnType<typeof spawnServer>;

/** Every server spawned since the last killServers(), running or not. */
const spawned: { process: ChildProcess; exited: Promise<unknown>; logs: Recorder<LogLine> }[] = [];

/** A path in a new temporary folder, for a state file nobody else uses. */
export const freshStateFile = (): string =>
  path.join(mkdtempSync(path.join(tmpdir(), 'forkcast-')), 'state.json');

/** The compiled entry by default; or a command that starts one (`npm start`), in a process group
 * of its own if `detached`, as a terminal runs it. */
export function spawnServer(
  env: Record<string, string>,
  { argv = [process.execPath, SERVER_MAIN], cwd = ROOT, detached = false } = {},
) {
  const [command = process.execPath, ...args] = argv;
  const base = { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: '0' };
  // Never the project's data/state.json, nor another test's unless it is given.
  const options = { cwd, detached, env: { ...base, STATE_FILE: freshStateFile(), ...env } };
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = new Recorder<LogLine>();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({ unparsed: line });
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  /** Resolves with the first log line with this message at or after index `from`. */
  const logged = (msg: string, timeoutMs = 5_000, from = 0) =>
    logs.waitFor((line) => line['msg'] === msg, { from, timeoutMs, what: msg });
  /** The URL once the server listens, forked ticker or not; a loaded machine is slow to start. */
  const url = async (timeoutMs = 15_000) =>
    String((await logged('forkcast listening', timeoutMs))['url']);
  /** The URL and the ticker's pid once the server forked it and listens. */
  const listening = async () => {
    const forked = await logged('ticker child forked', 15_000);
    return { url: await url(), tickerPid: Number(forked['pid']) };
  };
  /** How it ended: its exit, its stderr, and which of `others` it logged; read once its last
   * words `last` came, as 'exit' may come before the last of its output. */
  const ending = async (timeoutMs: number, last: string, ...others: string[]) => {
    const exit = await withDeadline(exited, timeoutMs, 'the server to exit');
    await logged(last, 1_000);
    const said = others.filter((msg) => logs.items.some((line) => line['msg'] === msg));
    return { exit, stderr, said };
  };
  const server = { process: child, logs, exited, logged, url, listening, ending };
  spawned.push(server);
  return { ...server, stderr: () => stderr };
}

/** Kills every server a test left behind, then each ticker child they forked that still runs (it
 * holds the server's stdout, and the test run, open); a zombie's or a reused pid's is left alone. */
export async function killServers(): Promise<void> {
  const servers = spawned.splice(0);
  // kill() does nothing to a server that has exited.
  for (const server of servers) server.process.kill('SIGKILL');
  const exits = Promise.all(servers.map((server) => server.exited));
  await withDeadline(exits, 3_000, 'the leftover servers to die');
  for (const line of servers.flatMap((server) => server.logs.items)) {
    const pid = line['msg'] === 'ticker child forked' ? line['pid'] : undefined;
    if (typeof pid === 'number' && procFile(pid, 'cmdline')?.includes('ticker'))
      process.kill(pid, 'SIGKILL');
  }
}
