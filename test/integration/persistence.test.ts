/**
 * The state file across real server restarts: the compiled server as its own process, shut
 * down with SIGTERM and started again on the same STATE_FILE. Files that cannot be used are
 * state-faults.test.ts's.
 */
import { readFileSync } from 'node:fs';

import { STATUS } from '../../protocol/events';
import { decayAll } from '../helpers/prices';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { withDeadline } from '../helpers/recorder';
import { expectSavedAfter } from '../helpers/saved-state';
import { connectWelcomed, isUpdate, type TestClient } from '../helpers/server';
import { freshStateFile } from '../helpers/server-process';

// Two server starts, each of which can take seconds on a busy machine.
jest.setTimeout(30_000);

const clients: TestClient[] = [];
afterAll(async () => {
  for (const client of clients) client.close();
  await cleanUpServers();
});

const STATE_FILE = freshStateFile();
const onDisk = (): unknown => JSON.parse(readFileSync(STATE_FILE, 'utf8'));

/** A server on STATE_FILE, and a greeted client of it. */
async function start(name: string) {
  const server = spawnTracked({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
  const [client] = await connectWelcomed(await server.url(15_000), clients, name);
  if (!client) throw new Error('unreachable');
  const terminate = async () => {
    server.process.kill('SIGTERM');
    const exit = withDeadline(server.exited, 5_000, 'the server to exit');
    await expect(exit).resolves.toEqual({ code: 0, signal: null });
  };
  return { client, terminate };
}

// DESIGN: seq "survives child crashes and server restarts"; the state file carries prices,
// running and seq from one server process to the next. A stopped state read back exactly is
// test/unit/state-file.test.ts's; every acknowledged buy on disk, crash-kills.test.ts's.
test('across a restart a running ticker resumes ticking without a start', async () => {
  const first = await start('a');
  const started = await first.client.start();
  await first.client.waitForUpdates(3, { from: started.index });
  await first.terminate();
  const saved = expectSavedAfter(onDisk(), first.client.lastUpdate());

  // Running resumes ticking without a start, where it stopped: one tick of decay per seq, no
  // gap. The saved update is more than a tick old by now, so the first tick is due at once and
  // may come before b's greeting; the greeting is the saved state ticked on as many times.
  const { client: b } = await start('b');
  const [greeting] = b.updates;
  const ticked = (greeting?.seq ?? 0) - saved.seq;
  expect(ticked).toBeGreaterThanOrEqual(0);
  let stocks = saved.stocks;
  for (let i = 0; i < ticked; i++) stocks = decayAll(stocks);
  expect(greeting).toEqual({ ...saved, stocks, seq: saved.seq + ticked, ts: expect.any(Number) });
  // The next tick may have arrived already: looked for from the start.
  const next = await b.events.waitFor(
    (event) => isUpdate(event) && event.update.seq === saved.seq + ticked + 1,
    { from: 0, timeoutMs: 3_000, what: 'the tick after the greeting' },
  );
  expect(isUpdate(next) && next.update).toMatchObject({ stocks: decayAll(stocks), running: true });
  expect(b.statuses).toEqual([{ message: STATUS.connected, running: true }]);
});
