/**
 * The state file going wrong, against the compiled server as its own process: a path whose
 * mkdir never ends stops the start; a folder that breaks while the server runs refuses ops,
 * reports itself degraded and fails its shutdown. The store itself (unusable paths and files,
 * failed writes, recovery) is test/unit/state-file.test.ts's; the supervisor refusing an op it
 * cannot save and restarting from the state on disk, test/unit/ticker-supervisor.test.ts's.
 */
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { STATUS } from '../../protocol/events';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { withDeadline } from '../helpers/recorder';
import { connectWelcomed, type TestClient } from '../helpers/server';
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
(process.platform === 'linux' ? test : test.skip)(
  'a state file path under /proc: the server exits 1 with a message naming the file',
  async () => {
    const server = spawn('/proc/self/x/state.json');
    await expect(withDeadline(server.exited, 7_000, 'the exit')).resolves.toEqual({
      code: 1,
      signal: null,
    });
    expect(server.stderr()).toMatch(
      /^forkcast failed to start: state file \/proc\/self\/x\/state.json: [^\n]*\n$/,
    );
    expect(server.logs.items.map((line) => line['msg'])).not.toContain('ticker child forked');
  },
);

// The state folder becomes a regular file, so the next write cannot open its temp file (ENOTDIR;
// chmod would not stop root).
test('the state folder breaks while the server runs: a buy is refused, /healthz says degraded, and SIGTERM while broken exits 1', async () => {
  const STATE_FILE = freshStateFile();
  const folder = path.dirname(STATE_FILE);
  const server = spawn(STATE_FILE);
  const url = await server.url(15_000);
  const [a] = await connectWelcomed(url, clients, 'a');
  if (!a) throw new Error('unreachable');
  rmSync(folder, { recursive: true });
  writeFileSync(folder, 'not a folder');
  const beforeFault = a.events.mark;
  expect((await a.buy('Apple')).ack).toEqual({
    ok: false,
    error: 'the state could not be saved; the operation was not applied',
  });
  // The child that applied it is replaced from the disk; wait until the new one is up.
  await a.waitForStatus(STATUS.tickerBack, { from: beforeFault, timeoutMs: 5_000 });
  const response = await fetch(`${url}/healthz`);
  expect([response.status, await response.json()]).toEqual([
    503,
    expect.objectContaining({
      ok: false,
      status: 'degraded',
      state: 'the state file cannot be written',
    }),
  ]);

  // Still broken: the last state cannot be saved, so the shutdown cannot claim success.
  server.process.kill('SIGTERM');
  await expect(withDeadline(server.exited, 8_000, 'the exit')).resolves.toEqual({
    code: 1,
    signal: null,
  });
  expect(server.logs.items.map((line) => line['msg'])).toContain('shutdown failed');
});
