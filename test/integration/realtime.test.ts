/**
 * The real server (createApp on a random loopback port, the real forked ticker child) with
 * several real Socket.IO clients over WebSocket.
 */
import { STATUS } from '../../protocol/events';
import { decayAll, grown, priceOf, SEED, withBuy } from '../helpers/prices';
import {
  expectContiguousSeq,
  isStatus,
  isUpdate,
  startServer,
  TestClient,
  type TestServer,
} from '../helpers/server';

const TICK_MS = 100;

let server: TestServer;
let clients: TestClient[];

beforeEach(async () => {
  server = await startServer({ tickMs: TICK_MS });
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  await server.forkcast.close();
  // Across the whole test, every client saw seq grow by exactly one per update.
  for (const client of clients) expectContiguousSeq(client);
});

async function join(name: string): Promise<TestClient> {
  const client = await TestClient.connect(server.url, name);
  clients.push(client);
  await client.welcome();
  return client;
}

function ehloCount(client: TestClient): number {
  return client.statuses.filter((status) => status.message === STATUS.connected).length;
}

test('each client is welcomed alone with EHLO and a snapshot: at start, late while running, while stopped', async () => {
  const a = await join('a');
  const b = await join('b');
  const seed = server.forkcast.ticker.snapshot();
  for (const client of [a, b]) {
    expect(await client.welcome()).toEqual({
      status: { message: 'EHLO OK Connected', running: false },
      snapshot: { stocks: SEED, running: false, seq: 0, ts: seed.ts },
    });
  }

  const started = await a.start();
  expect(started.ack).toEqual({ ok: true, running: true });
  await a.waitForUpdates(3, { from: started.index });

  // A late joiner while running gets the live prices at once.
  const late = await join('late');
  const lateWelcome = await late.welcome();
  expect(lateWelcome.status).toEqual({ message: 'EHLO OK Connected', running: true });
  expect(lateWelcome.snapshot.running).toBe(true);
  expect(lateWelcome.snapshot.seq).toBeGreaterThanOrEqual(3);
  // The snapshot is exactly the update the others got with that seq.
  const seen = await a.events.waitFor(
    (event) => isUpdate(event) && event.update.seq === lateWelcome.snapshot.seq,
    { timeoutMs: 3_000, what: 'a: the update in the late joiner snapshot' },
  );
  expect(seen).toEqual({ kind: 'update', update: lateWelcome.snapshot, at: expect.any(Number) });
  const next = await late.nextUpdate({ from: 2 });
  expect(next.seq).toBe(lateWelcome.snapshot.seq + 1);
  expect(next.stocks).toEqual(decayAll(lateWelcome.snapshot.stocks));

  const stopped = await a.stop();
  expect(stopped.ack).toEqual({ ok: true, running: false });
  const last = a.lastUpdate(stopped.index);

  // A joiner while stopped sees the current prices too, flagged as stopped.
  const quiet = await join('quiet');
  expect(await quiet.welcome()).toEqual({
    status: { message: 'EHLO OK Connected', running: false },
    snapshot: { ...last, running: false },
  });

  // Nobody got a second EHLO when the others joined.
  for (const client of [a, b, late]) await client.sync();
  for (const client of [a, b, late, quiet]) {
    expect(ehloCount(client)).toBe(1);
    expect(client.statuses[0]?.message).toBe(STATUS.connected);
  }
});

test('start: ack, Processing to all; a second start is a no-op for the others and no second loop', async () => {
  const [a, b, c] = [await join('a'), await join('b'), await join('c')];
  const marks = clients.map((client) => client.events.mark);

  const started = await a.start();
  expect(started.ack).toEqual({ ok: true, running: true });
  // The asker hears Processing before its ack.
  expect(a.events.since(marks[0] ?? 0).filter(isStatus)).toEqual([
    { kind: 'status', status: { message: 'Processing', running: true }, at: expect.any(Number) },
  ]);
  for (const [i, client] of clients.entries()) {
    const status = await client.waitForStatus(STATUS.started, { from: marks[i] ?? 0 });
    expect(status.status).toEqual({ message: 'Processing', running: true });
  }
  await a.waitForUpdates(2, { from: started.index });

  const beforeSecond = clients.map((client) => client.events.mark);
  const second = await a.start();
  expect(second.ack).toEqual({ ok: true, running: true });
  // Only the asker hears Processing again.
  expect(a.events.since(beforeSecond[0] ?? 0).filter(isStatus)).toEqual([
    { kind: 'status', status: { message: 'Processing', running: true }, at: expect.any(Number) },
  ]);
  await b.sync();
  await c.sync();
  expect(b.events.since(beforeSecond[1] ?? 0).filter(isStatus)).toEqual([]);
  expect(c.events.since(beforeSecond[2] ?? 0).filter(isStatus)).toEqual([]);

  // Still one tick per interval: six ticks span about five intervals (two loops: half that).
  const ticks = await a.waitForUpdates(6, { from: second.index });
  const span = (ticks.at(-1)?.ts ?? 0) - (ticks[0]?.ts ?? 0);
  expect(span).toBeGreaterThanOrEqual(4 * TICK_MS);
  for (let i = 1; i < ticks.length; i++) {
    const previous = ticks[i - 1];
    if (!previous) throw new Error('missing tick');
    expect(ticks[i]?.stocks).toEqual(decayAll(previous.stocks));
  }
});

test('a buy is seen by every client with the same seq and exact price; stop, twice; a buy while stopped', async () => {
  const [a, b, c] = [await join('a'), await join('b'), await join('c')];
  const started = await a.start();
  await a.waitForUpdates(2, { from: started.index });

  // While running.
  const bought = await b.buy('Apple');
  if (!bought.ack.ok) throw new Error(`buy failed: ${bought.ack.error}`);
  const price = bought.ack.stock.price;
  expect(bought.ack.stock.name).toBe('Apple');
  const buyUpdate = await b.events.waitFor(
    (event) => isUpdate(event) && priceOf(event.update.stocks, 'Apple') === price,
    { timeoutMs: 3_000, what: 'b: the update with the bought price' },
  );
  if (!isUpdate(buyUpdate)) throw new Error('unreachable');
  const applied = buyUpdate.update;
  // The update before it is the state the buy applied to: exactly one stock grown by 1/10.
  const before = b.updates.find((update) => update.seq === applied.seq - 1);
  if (!before) throw new Error('b missed the update before the buy');
  expect(price).toBe(grown(priceOf(before.stocks, 'Apple')));
  expect(applied.stocks).toEqual(withBuy(before.stocks, 'Apple'));
  for (const client of [a, c]) {
    const same = await client.events.waitFor(
      (event) => isUpdate(event) && event.update.seq === applied.seq,
      {
        timeoutMs: 3_000,
        what: `${client.name}: update #${applied.seq}`,
      },
    );
    expect(same).toEqual({ kind: 'update', update: applied, at: expect.any(Number) });
  }

  // Stop: everyone hears it and the ticks end.
  const marks = clients.map((client) => client.events.mark);
  const stopped = await c.stop();
  expect(stopped.ack).toEqual({ ok: true, running: false });
  const stoppedAt: number[] = [];
  for (const [i, client] of clients.entries()) {
    const status = await client.waitForStatus(STATUS.stopped, { from: marks[i] ?? 0 });
    expect(status.status).toEqual({ message: 'Stopped', running: false });
    stoppedAt.push(client.events.items.indexOf(status));
  }
  // One bounded wait of three tick intervals covers every client: each must get no update
  // after its own Stopped.
  for (const [i, client] of clients.entries()) {
    const late = await client.events.quietFor(
      i === 0 ? 3 * TICK_MS : 0,
      isUpdate,
      (stoppedAt[i] ?? 0) + 1,
    );
    expect(late).toEqual([]);
  }
  expect(server.forkcast.ticker.snapshot().running).toBe(false);

  // A stop while stopped is acknowledged and told to the asker only.
  const again = clients.map((client) => client.events.mark);
  expect((await b.stop()).ack).toEqual({ ok: true, running: false });
  expect(b.events.since(again[1] ?? 0)).toEqual([
    { kind: 'status', status: { message: 'Stopped', running: false }, at: expect.any(Number) },
  ]);
  await a.sync();
  await c.sync();
  expect([a.events.since(again[0] ?? 0), c.events.since(again[2] ?? 0)]).toEqual([[], []]);

  // A buy while stopped still reaches everyone at once.
  const last = a.lastUpdate();
  const buyMarks = clients.map((client) => client.events.mark);
  const stoppedBuy = await a.buy('Facebook');
  expect(stoppedBuy.ack).toEqual({
    ok: true,
    stock: { name: 'Facebook', price: grown(priceOf(last.stocks, 'Facebook')) },
  });
  for (const [i, client] of clients.entries()) {
    const update = await client.nextUpdate({ from: buyMarks[i] ?? 0 });
    expect(update).toEqual({
      stocks: withBuy(last.stocks, 'Facebook'),
      running: false,
      seq: last.seq + 1,
      ts: expect.any(Number),
    });
  }
});

test('a buy that would overflow a price is refused with a clear error; nothing else stops', async () => {
  // Apple one buy (× 1.1) away from the largest double: about 7,450 buys from the seed price,
  // two and a half minutes of one client at the default rate limit.
  await server.forkcast.close();
  const top = Number.MAX_VALUE / 1.05;
  server = await startServer({
    tickMs: TICK_MS,
    initialState: {
      stocks: [{ name: 'Apple', price: top }, ...SEED.slice(1)],
      running: false,
      seq: 3,
      ts: Date.now(),
    },
  });
  const [a, b] = [await join('a'), await join('b')];
  const markB = b.events.mark;
  const refused = await a.buy('Apple');
  expect(refused.ack).toEqual({
    ok: false,
    error: 'Apple is at the highest price forkcast can show',
  });
  await b.sync();
  expect(b.events.since(markB)).toEqual([]);
  expect(priceOf(server.forkcast.ticker.snapshot().stocks, 'Apple')).toBe(top);

  // Other stocks still trade, and the ticker still ticks, Apple included.
  const bought = await a.buy('Facebook');
  expect(bought.ack).toEqual({ ok: true, stock: { name: 'Facebook', price: grown(37.75) } });
  const started = await a.start();
  expect(started.ack).toEqual({ ok: true, running: true });
  // Apple's first move is the first tick's decay. (The first running update is not always
  // the tick: when start overtakes the buy's flush, the tick sends the buy first, as an
  // update of its own that already says running: true.)
  const tick = await b.events.waitFor(
    (event) =>
      isUpdate(event) && event.update.running && priceOf(event.update.stocks, 'Apple') !== top,
    { from: 0, timeoutMs: 2_000, what: 'a tick that moves Apple' },
  );
  expect(isUpdate(tick) && priceOf(tick.update.stocks, 'Apple')).toBe(top - top / 1800);
});
