/** `npm run dev` through Angular's dev server, and its Ctrl-C; most of the time is ng serve's
 * first build and tsc --watch's first pass. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

import { PATHS, ROOT } from '../../server/paths';
import { freePorts } from '../helpers/redis-server';
import { processRunning, statFields, waitForProcessGone } from '../helpers/processes';
import { Recorder, withDeadline } from '../helpers/recorder';
import { freshStateFile } from '../helpers/server-process';
import { TestClient } from '../helpers/server';

// A cold first client build on a small CI machine takes most of this.
const READY_MS = 150_000;
jest.setTimeout(READY_MS + 60_000);

test('npm run dev serves through the dev server and stops cleanly on Ctrl-C', async () => {
  const distClient = listing(PATHS.client);
  const [port, ngPort] = (await freePorts(2)).map(String);
  const dev = spawn('npm', ['run', 'dev'], {
    cwd: ROOT,
    // A process group of its own, as a terminal gives the command it runs in the foreground.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PORT: port, NG_PORT: ngPort, STATE_FILE: freshStateFile() },
  });
  const lines = new Recorder<string>();
  for (const input of [dev.stdout, dev.stderr])
    createInterface({ input }).on('line', (line) => lines.push(line));
  // 'close': after the output too, which the assertions read.
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    dev.once('close', (code, signal) => resolve({ code, signal })),
  );
  const output = (): string => lines.items.join('\n');
  const pid = dev.pid!;
  void exited.then((exit) =>
    lines.failAll(`npm run dev exited early (${JSON.stringify(exit)}):\n${output()}`),
  );
  try {
    const wait = { timeoutMs: READY_MS, what: 'npm run dev to be ready' };
    const ready = await lines.waitFor((line) => line.includes('ready: open'), wait);
    const url = /open (http:\/\/\S+?)\/? /.exec(ready)?.[1];
    expect(url).toBe(`http://localhost:${ngPort}`);

    // The shell is the server's: Vite's error overlay styles itself with the nonce of its CSP.
    const shell = await fetch(`${url}/`);
    const nonce = /'nonce-([^']+)'/.exec(shell.headers.get('content-security-policy') ?? '')?.[1];
    expect([shell.status, await shell.text()]).toEqual([
      200,
      expect.stringContaining(`<meta property="csp-nonce" nonce="${nonce}">`),
    ]);
    const main = await fetch(`${url}/main.js`);
    const [js, length] = [expect.stringMatching(/javascript/), (await main.text()).length];
    expect([main.status, main.headers.get('content-type'), length > 0]).toEqual([200, js, true]);
    expect(await (await fetch(`${url}/healthz`)).json()).toMatchObject({ ok: true });
    // Socket.IO over a WebSocket upgrade through the proxy.
    const client = await TestClient.connect(url!, 'dev');
    await client.welcome().finally(() => client.close());

    const tools = descendantsOf(pid);
    // tsc, ng (and its esbuild), node --watch, the server and its ticker child at least.
    expect(tools.length).toBeGreaterThanOrEqual(6);
    // Ctrl-C as a terminal sends it to the group, then a SIGTERM as a second forwarder would.
    process.kill(-pid, 'SIGINT');
    process.kill(-pid, 'SIGTERM');
    const exit = await withDeadline(exited, 20_000, 'npm run dev to exit');
    // The output only when it failed, to say why.
    const clean = { exit: { code: 0, signal: null }, output: '' };
    expect({ exit, output: exit.code === 0 ? '' : output() }).toEqual(clean);
    await Promise.all(tools.map((child) => waitForProcessGone(child, 5_000)));
    // One server from start to end (nothing rebuilt what was already built), one clean stop.
    const count = (pattern: RegExp): number => output().match(pattern)?.length ?? 0;
    expect([count(/^server .*: shutting down$/gm), count(/^server .*: bye$/gm)]).toEqual([1, 1]);
    expect(output()).not.toMatch(/Restarting|second signal|^dev .* exited \(/m);
    expect(output()).toMatch(/^dev +stopped$/m);
    expect(listing(PATHS.client)).toEqual(distClient);
  } finally {
    // A failed run must not leave the tools running (kill skips those already gone).
    spawnSync('kill', ['-KILL', ...[pid, ...descendantsOf(pid)].map(String)]);
  }
});

/** Every process below `root`, from /proc (the tools run in process groups of their own). */
function descendantsOf(root: number): number[] {
  // Field 4 of stat, after the state; a process gone while we looked has none (NaN).
  const parents = readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map((entry) => [Number(entry), Number(statFields(Number(entry))?.[1])] as const);
  const found = [root];
  // An array iterator sees what is pushed while it runs: children, then theirs.
  for (const ancestor of found)
    for (const [pid, parent] of parents) if (parent === ancestor) found.push(pid);
  return found.slice(1).filter(processRunning);
}

/** Name, size and modification time of every file under `dir`. */
function listing(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  return files
    .map((name) => [name, statSync(path.join(dir, name))] as const)
    .map(([name, { size, mtimeMs }]) => `${name} ${size} ${mtimeMs}`)
    .sort();
}
