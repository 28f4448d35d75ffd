/**
 * The state file going wrong, against the compiled server as its own process: a path that
 * cannot be used stops the start with a message saying which file and why; a folder that breaks
 * while the server runs refuses ops instead of losing them, reports itself degraded and fails
 * its shutdown. The store itself (a torn file moved aside, recovery included) is
 * test/unit/state-file.test.ts's.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { STATUS } from '../../protocol/events';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { grown, priceOf, SEED } from '../helpers/prices';
import { withDeadline } from '../helpers/recorder';
import { connectWelcomed, isUpdate, type TestClient } from '../helpers/server';
import { freshStateFile } from '../helpers/server-process';

jest.setTimeout(15_000);

let clients: TestClient[] = [];
afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cleanUpServers();
});

const spawn = (STATE_FILE: string) =>
  spawnTracked({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });

// procfs answers ENOENT to any mkdir, and Node's recursive mkdir then retries for good, on the
// thread pool: only the write deadline (2 s) ends that start, and only a process can show it.
test.each([
  ['a folder', () => path.dirname(freshStateFile()), 'EISDIR'],
  ...(process.platform === 'linux'
    ? [['a path under /proc', () => '/proc/self/x/state.json', '']]
    : []),
] as [string, () => string, string][])(
  'a state file path that is %s: the server exits 1 with a message naming the file',
  async (_what, makePath, why) => {
    const STATE_FILE = makePath();
    const server = spawn(STATE_FILE);
    await expect(withDeadline(server.exited, 7_000, 'the exit')).resolves.toEqual({
      code: 1,
      signal: null,
    });
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
  const [a] = await connectWelcomed(await server.url(15_000), clients, 'a');
  if (!a) throw new Error('unreachable');
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
  expect(JSON.parse(readFileSync(STATE_FILE, 'utf8'))).toEqual({ ...carried, unannounced: false });

  rmSync(folder, { recursive: true });
  writeFileSync(folder, 'not a folder');
  const beforeFault = a.events.mark;
  expect((await a.buy('Apple')).ack).toEqual({
    ok: false,
    error: 'the state could not be saved; the operation was not applied',
  });
  // The child that applied it is replaced from the disk; wait until the new one is up.
  await a.waitForStatus(STATUS.tickerBack, { from: beforeFault, timeoutMs: 5_000 });
  await a.sync();
  expect(a.events.since(beforeFault).filter(isUpdate)).toEqual([]);
  const [b] = await connectWelcomed(await server.url(), clients, 'b');
  expect(b?.updates).toEqual([carried]);
  const response = await fetch(`${await server.url()}/healthz`);
  expect([response.status, await response.json()]).toEqual([
    503,
    expect.objectContaining({
      ok: false,
      status: 'degraded',
      state: 'the state file cannot be written',
    }),
  ]);

  // Still broken: the last state cannot be saved, so the shutdown cannot claim success. (The
  // recovery once the folder is back: the store's and the supervisor's unit tests.)
  server.process.kill('SIGTERM');
  await expect(withDeadline(server.exited, 8_000, 'the exit')).resolves.toEqual({
    code: 1,
    signal: null,
  });
  expect(server.logs.items.map((line) => line['msg'])).toContain('shutdown failed');
});
