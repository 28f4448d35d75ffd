/**
 * The supervisor brings a killed ticker child back with the state it had: prices, the running
 * flag and seq continue as if nothing happened, and clients are told about the outage.
 */
import { STATUS } from '../../protocol/events';
import { decayAll, SEED } from '../helpers/prices';
import { expectContiguousSeq, startServer, TestClient, type TestServer } from '../helpers/server';

const TICK_MS = 150;

let server: TestServer;
let clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  await server.forkcast.close();
  for (const client of clients) expectContiguousSeq(client);
});

test('a SIGKILLed ticker child is restarted and prices continue without a gap', async () => {
  server = await startServer({ tickMs: TICK_MS });
  const a = await TestClient.connect(server.url, 'a');
  const b = await TestClient.connect(server.url, 'b');
  clients = [a, b];
  await a.welcome();
  await b.welcome();

  const started = await a.start();
  expect(started.ack).toEqual({ ok: true, running: true });
  await a.waitForUpdates(2, { from: started.index });

  // An op sent the moment the outage is announced is refused, not lost or hung.
  const refused = new Promise<unknown>((resolve) => {
    a.socket.on('status', (status) => {
      if (status.message === STATUS.tickerLost) a.socket.emit('buy', 'Apple', resolve);
    });
  });

  // Kill right after an update so that none is in flight.
  const oldPid = server.forkcast.ticker.pid;
  if (oldPid === undefined) throw new Error('no ticker pid');
  const marks = clients.map((client) => client.events.mark);
  await a.nextUpdate({ from: marks[0] ?? 0 });
  process.kill(oldPid, 'SIGKILL');

  for (const [i, client] of clients.entries()) {
    const lost = await client.waitForStatus(STATUS.tickerLost, { from: marks[i] ?? 0 });
    expect(lost.status).toEqual({ message: 'Ticker restarting: prices paused', running: true });
  }
  await expect(refused).resolves.toEqual({
    ok: false,
    error: 'the ticker is restarting; try again in a moment',
  });

  const backAt: number[] = [];
  for (const [i, client] of clients.entries()) {
    const back = await client.waitForStatus(STATUS.tickerBack, { from: marks[i] ?? 0 });
    expect(back.status).toEqual({ message: 'Ticker back: prices live', running: true });
    backAt.push(client.events.items.indexOf(back));
  }
  const newPid = server.forkcast.ticker.pid;
  expect(typeof newPid).toBe('number');
  expect(newPid).not.toBe(oldPid);

  // The next update continues seq and prices exactly from the last one before the outage.
  for (const [i, client] of clients.entries()) {
    const last = client.lastUpdate(backAt[i]);
    const next = await client.nextUpdate({ from: (backAt[i] ?? 0) + 1, timeoutMs: 3_000 });
    expect(next).toEqual({
      stocks: decayAll(last.stocks),
      running: true,
      seq: last.seq + 1,
      ts: expect.any(Number),
    });
  }

  // And the restarted child takes ops again.
  const stopped = await b.stop();
  expect(stopped.ack).toEqual({ ok: true, running: false });
  expect(server.forkcast.ticker.snapshot().stocks).not.toEqual(SEED);
});
