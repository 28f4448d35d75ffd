/**
 * The state file going wrong, against the compiled server as its own process: a path that
 * cannot be used stops the start with a message saying which file and why; a folder that breaks
 * while the server runs refuses ops instead of losing them, reports itself degraded and fails
 * its shutdown. The store itself (a torn file moved aside, recovery included) is
 * test/unit/state-file.test.ts's.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { STATUS } from '../../protocol/events';
import { savedStateSchema } from '../../protocol/validation';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { grown, priceOf, SEED } from '../helpers/prices';
import { withDeadline } from '../helpers/recorder';
import { TestClient } from '../helpers/server';
import { freshStateFile, type ServerProcess } from '../helpers/server-process';

jest.setTimeout(15_000);

const NOT_SAVED = 'the state could not be saved; the operation was not applied';
/** main.ts gives every state file write this long before it counts as failed. */
const WRITE_DEADLINE_MS = 2_000;

let clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cleanUpServers();
});

function spawn(STATE_FILE: string): ServerProcess {
  return spawnTracked({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
}

async function connect(url: string, name: string): Promise<TestClient> {
  const client = await TestClient.connect(url, name);
  clients.push(client);
  await client.welcome();
  return client;
}

async function exitCode(server: ServerProcess, withinMs: number): Promise<number | null> {
  const { code, signal } = await withDeadline(server.exited, withinMs, 'the server to exit');
  expect(signal).toBeNull();
  return code;
}

async function health(url: string): Promise<{ httpStatus: number; body: unknown }> {
  const response = await fetch(`${url}/healthz`);
  return { httpStatus: response.status, body: await response.json() };
}

function onDisk(file: string) {
  return savedStateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

// procfs answers ENOENT to any mkdir, and Node's recursive mkdir then retries for good, on the
// thread pool: only the write deadline ends that start, and only a process of its own can show it.
const linux = process.platform === 'linux';
test.each([
  [
    'a folder',
    () => {
      const folder = freshStateFile();
      mkdirSync(folder);
      return folder;
    },
    'EISDIR',
  ],
  ...(linux ? [['a path under /proc', () => '/proc/self/forkcast-test/state.json', '']] : []),
] as [string, () => string, string][])(
  'a state file path that is %s: the server exits 1 with a message naming the file',
  async (_what, makePath, why) => {
    const STATE_FILE = makePath();
    const server = spawn(STATE_FILE);
    expect(await exitCode(server, WRITE_DEADLINE_MS + 5_000)).toBe(1);
    expect(server.stderr()).toMatch(
      new RegExp(`^forkcast failed to start: state file ${STATE_FILE}: ${why}[^\\n]*\\n$`),
    );
    expect(server.logs.items.map((line) => line['msg'])).not.toContain('ticker child forked');
  },
);

/**
 * A server with one good buy of Apple on disk, then its state folder replaced by a regular file,
 * so the next write cannot open its temp file (ENOTDIR; chmod would not stop root).
 */
test('the state folder breaks while the server runs: a buy is refused and unseen, /healthz says degraded, and SIGTERM while broken exits 1', async () => {
  const STATE_FILE = freshStateFile();
  const folder = path.dirname(STATE_FILE);
  const server = spawn(STATE_FILE);
  const url = await server.url(15_000);
  const a = await connect(url, 'a');
  const boughtOnce = grown(priceOf(SEED, 'Apple'));
  const beforeBuy = a.events.mark;
  expect((await a.buy('Apple')).ack).toEqual({
    ok: true,
    stock: { name: 'Apple', price: boughtOnce },
  });
  // The update that carries it goes out only once it is on disk: nothing is left to write
  // when the folder goes. (It may overtake the ack: both can share one write.)
  const carried = await a.nextUpdate({ from: beforeBuy });
  expect(priceOf(carried.stocks, 'Apple')).toBe(boughtOnce);
  expect(onDisk(STATE_FILE)).toEqual({ ...carried, unannounced: false });

  rmSync(folder, { recursive: true });
  writeFileSync(folder, 'not a folder');
  const beforeFault = a.events.mark;
  expect((await a.buy('Apple')).ack).toEqual({ ok: false, error: NOT_SAVED });
  // The child that applied it is replaced from the disk; wait until the new one is up.
  await a.waitForStatus(STATUS.tickerBack, { from: beforeFault, timeoutMs: 5_000 });
  await a.sync();
  // Which writes failed, and why, is logged: test/unit/state-file.test.ts.
  expect(a.events.since(beforeFault).filter((event) => event.kind === 'update')).toEqual([]);
  const b = await connect(url, 'b');
  expect(b.updates).toEqual([carried]);
  await expect(health(url)).resolves.toEqual({
    httpStatus: 503,
    body: expect.objectContaining({
      ok: false,
      status: 'degraded',
      state: 'the state file cannot be written',
    }),
  });

  // Still broken: the last state cannot be saved, so the shutdown cannot claim success. (The
  // recovery once the folder is back: the store's and the supervisor's unit tests.)
  server.process.kill('SIGTERM');
  expect(await exitCode(server, 8_000)).toBe(1);
  expect(server.logs.items.map((line) => line['msg'])).toContain('shutdown failed');
});
