/**
 * The state file across real server restarts: the compiled server as its own process, shut
 * down with SIGTERM and started again on the same STATE_FILE. Files that cannot be used are
 * state-faults.test.ts's.
 */
import { readFileSync } from 'node:fs';

import { STATUS } from '../../protocol/events';
import { withDeadline } from '../helpers/recorder';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { decayAll } from '../helpers/prices';
import { expectSavedAfter } from '../helpers/saved-state';
import { isUpdate, TestClient } from '../helpers/server';
import { freshStateFile, type ServerProcess } from '../helpers/server-process';

// Two server starts, each of which can take seconds on a busy machine.
jest.setTimeout(30_000);

let clients: TestClient[] = [];

const spawn = spawnTracked;

afterEach(async () => {
  for (const client of clients) client.close();
  clients = [];
  await cleanUpServers();
});

async function connect(url: string, name: string): Promise<TestClient> {
  const client = await TestClient.connect(url, name);
  clients.push(client);
  await client.welcome();
  return client;
}

async function terminate(server: ServerProcess): Promise<void> {
  server.process.kill('SIGTERM');
  await expect(withDeadline(server.exited, 5_000, 'the server to exit')).resolves.toEqual({
    code: 0,
    signal: null,
  });
}

function onDisk(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8'));
}

// DESIGN: seq "survives child crashes and server restarts"; the state file carries prices,
// running and seq from one server process to the next.
test('across a restart a running ticker resumes ticking without a start, and a stopped one is saved exactly', async () => {
  const STATE_FILE = freshStateFile();
  const first = spawn({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
  const a = await connect(await first.url(15_000), 'a');
  const started = await a.start();
  await a.waitForUpdates(3, { from: started.index });
  await terminate(first);
  const saved = expectSavedAfter(onDisk(STATE_FILE), a.lastUpdate());

  const second = spawn({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
  const b = await connect(await second.url(15_000), 'b');
  // Running resumes ticking without a start, where it stopped: one tick of decay per seq, no
  // gap. The saved update is more than a tick old by now, so the first tick is due at once and
  // may come before b's greeting; the greeting is the saved state ticked on as many times.
  const { snapshot } = await b.welcome();
  const ticked = snapshot.seq - saved.seq;
  expect(ticked).toBeGreaterThanOrEqual(0);
  let stocks = saved.stocks;
  for (let i = 0; i < ticked; i++) stocks = decayAll(stocks);
  expect(snapshot).toEqual({ ...saved, stocks, seq: saved.seq + ticked, ts: expect.any(Number) });
  // The next tick may have arrived already, before this line runs: looked for from the start.
  const next = await b.events.waitFor(
    (event) => isUpdate(event) && event.update.seq === snapshot.seq + 1,
    { from: 0, timeoutMs: 3_000, what: 'the tick after the greeting' },
  );
  expect(isUpdate(next) ? next.update : null).toEqual({
    stocks: decayAll(stocks),
    running: true,
    seq: snapshot.seq + 1,
    ts: expect.any(Number),
  });
  expect(b.statuses).toEqual([{ message: STATUS.connected, running: true }]);

  expect((await b.stop()).ack).toEqual({ ok: true, running: false });
  const beforeBuy = b.events.mark;
  expect((await b.buy('Facebook')).ack).toMatchObject({ ok: true });
  await b.nextUpdate({ from: beforeBuy });
  await b.sync();
  const before = b.lastUpdate();
  expect(before.running).toBe(false);
  await terminate(second);
  // Stopped, the file holds exactly the last update; reading it back exactly is
  // test/unit/state-file.test.ts's, a child started stopped staying so supervision.test.ts's.
  expect(onDisk(STATE_FILE)).toEqual({ ...before, unannounced: false });
});
