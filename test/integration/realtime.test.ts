/** The real server (createApp on a loopback port, the real forked ticker child) and several real
 * Socket.IO clients: greetings, ops and their acks, an op racing close(), recovery. */
import { once } from 'node:events';
import { connect } from 'node:net';

import { STATUS } from '../../protocol/events';
import { grown, SEED } from '../helpers/prices';
import { RawSocket } from '../helpers/raw-socket';
import { delay, withDeadline } from '../helpers/recorder';
import {
  connectWelcomed,
  expectContiguousSeq,
  isStatus,
  isUpdate,
  startServer,
  type TestClient,
  type TestServer,
} from '../helpers/server';

let server: TestServer, clients: TestClient[];

beforeEach(async () => {
  server = await startServer({ tickMs: 100 });
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  await server.forkcast.close();
  for (const client of clients) expectContiguousSeq(client);
});

/** Greeted clients, one per name, closed and seq-checked by afterEach. */
const join = <N extends string[]>(...names: N) =>
  connectWelcomed(server.url, clients, ...names) as Promise<{ [K in keyof N]: TestClient }>;

const ehlo = (running: boolean) => ({ message: STATUS.connected, running });

/** The events a bare socket gets up to a barrier's ack, each frame as [event, payload, offset?]. */
async function rawEvents(auth?: object): Promise<unknown[]> {
  const raw = await RawSocket.connect(server.url, auth);
  raw.send('421["raw-barrier"]');
  await raw.waitForText('431[', 'the ack of a raw barrier, after the whole greeting');
  raw.close();
  const events = raw.frames.items.filter((frame) => frame.startsWith('42['));
  return events.map((frame) => JSON.parse(frame.slice(2)) as unknown);
}

test('each new socket is greeted alone: EHLO, a snapshot, the recent past; at start and late while running', async () => {
  const [a] = await join('a');
  const seed = server.forkcast.ticker.snapshot();
  // An unknown session (another's, or expired) is greeted afresh; greetings carry no offset.
  expect(await rawEvents({ pid: 'unknown', offset: '0-0' })).toEqual([
    ['status', ehlo(false)],
    ['update', seed],
    ['history', { updates: [seed] }],
    // Never started: the first prices this server knew.
    ['opening', { stocks: SEED, seq: 0, ts: seed.ts }],
  ]);

  const beforeStart = a.others.mark;
  await a.waitForUpdates(3, { from: (await a.start()).index });
  // A late joiner gets the live prices and those `a` started from; no offset mid-run either.
  const late = await rawEvents();
  expect(late.slice(0, 4)).toEqual([
    ['status', ehlo(true)],
    ['update', expect.objectContaining({ running: true })],
    ['history', expect.anything()],
    ['opening', await a.next('opening', beforeStart)],
  ]);
  expect((late[1] as [string, { seq: number }])[1].seq).toBeGreaterThanOrEqual(3);
});

/** Who asks, what, the running state after it, and who hears a run status (a repeated start or
 * stop: the asker only). A buy's ack and broadcast: http.test.ts; its prices: the model's. */
const OPS: [who: number, op: 'start' | 'stop', running: boolean, heard: string][] = [
  [0, 'start', true, 'all'],
  [0, 'start', true, 'asker'],
  [2, 'stop', false, 'all'],
  [1, 'stop', false, 'asker'],
];

test('starts and stops: acks, run statuses to all or the asker only, the opening prices to all', async () => {
  const all = await join('a', 'b', 'c');
  for (const [who, op, running, heard] of OPS) {
    const marks = all.map((client) => client.events.mark);
    const others = all.map((client) => client.others.mark);
    const statusesOf = (i: number, to?: number) =>
      all[i]!.events.items.slice(marks[i], to).flatMap((e) => (isStatus(e) ? [e.status] : []));
    const { ack, index } = await all[who]![op]();
    expect(ack).toEqual({ ok: true, running });
    const status = { message: running ? STATUS.started : STATUS.stopped, running };
    const told = all.map((_, i) => (heard === 'all' || i === who ? [status] : []));
    // The asker of a start hears it before its ack.
    if (op === 'start') expect(statusesOf(who, index)).toEqual([status]);
    for (const [i, client] of all.entries())
      if (told[i]!.length > 0) await client.waitForStatus(status.message, { from: marks[i]! });
    for (const client of all) await client.sync();
    expect(all.map((_, i) => statusesOf(i))).toEqual(told);
    // A real start tells everyone the prices it started from, which "change since open" uses.
    const opened = all.map((client, i) =>
      client.others.since(others[i]!).map(({ payload }) => 'ts' in payload && payload.stocks),
    );
    const from = all[who]!.lastUpdate(marks[who]).stocks;
    expect(opened).toEqual(all.map(() => (op === 'start' && heard === 'all' ? [from] : [])));
  }
});

test('a burst of toggles does not flood everyone with run statuses; the last one tells the final state', async () => {
  const statusIntervalMs = 250; // RUN_STATUS_MIN_INTERVAL_MS
  const [toggler, watcher] = await join('toggler', 'watcher');
  const began = performance.now();
  // 20 changes 30 ms apart (under the limit), ending stopped: a trailing status says so.
  const acks = [];
  for (let i = 0; i < 20; i++) {
    acks.push((await (i % 2 ? toggler.stop() : toggler.start())).ack);
    await delay(30);
  }
  expect(acks).toEqual(acks.map((_, i) => ({ ok: true, running: i % 2 === 0 })));

  const runStatuses = () => watcher.statuses.filter(({ message }) => message !== STATUS.connected);
  // The last status says stopped and stays so; synced first, so no older one follows it.
  await watcher.sync();
  const stopped = { timeoutMs: 3_000, what: 'watcher: a last status saying stopped' };
  await watcher.events.waitFor(() => runStatuses().at(-1)?.running === false, stopped);
  await delay(2 * statusIntervalMs);
  await watcher.sync();
  const elapsed = performance.now() - began;
  expect(runStatuses().at(-1)?.running).toBe(false);
  expect(runStatuses().length).toBeLessThanOrEqual(Math.ceil(elapsed / statusIntervalMs) + 2);
}, 15_000);

// What the signals that call close() do is main.test.ts's. One that drops before any broadcast
// has no recovery offset to offer (greetings carry none: the first test), so it is greeted afresh.
test('recovery: a client away (up to two minutes) gets what it missed, in order, and no second greeting; close(), called twice at once, tells each client once, answers an op that arrives as it starts, then disconnects', async () => {
  const [a, b] = await join('a', 'b');
  await a.waitForUpdates(3, { from: (await a.start()).index });
  // Several updates go out while `a` is away; to the server's clock, a minute: within the window.
  const now = Date.now.bind(Date);
  const back = await a.blip(async () => {
    await b.waitForUpdates(3, { from: b.events.mark });
    jest.spyOn(Date, 'now').mockImplementation(() => now() + 60_000);
  });
  jest.restoreAllMocks();
  expect(a.socket.recovered).toBe(true);
  const newestMeanwhile = b.lastUpdate().seq;
  const newer = { from: back, timeoutMs: 3_000, what: 'an update newer than those missed' };
  await a.events.waitFor((event) => isUpdate(event) && event.update.seq > newestMeanwhile, newer);
  // The missed, then the live ones (afterEach: once each, in order); no status but the EHLO.
  const statuses = a.events.since(back).filter(isStatus);
  expect(statuses.map(({ status }) => status.message)).toEqual([STATUS.connected]);

  const disconnected = new Promise<string>((resolve) => a.socket.once('disconnect', resolve));
  // A peer that never ends its request would hold close() up for a minute (headersTimeout).
  const silent = connect(Number(new URL(server.url).port), '127.0.0.1');
  await once(silent, 'connect');
  silent.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  const cut = once(silent, 'close');
  // The server starts closing the moment it receives this buy, before the buy reaches the ticker.
  let closing: Promise<void> | undefined;
  server.forkcast.io.sockets.sockets.get(a.socket.id ?? '')?.on('buy', () => {
    closing = server.forkcast.close();
    // Called again at once (two signals): still one close, one goodbye.
    void server.forkcast.close();
  });
  expect((await a.buy('Apple')).ack).toEqual({ ok: false, error: 'the server is shutting down' });
  // afterEach closes it a second time, which must be safe too.
  await withDeadline(Promise.resolve(closing), 3_000, 'close() despite the silent peer');
  await withDeadline(cut, 1_000, 'the silent peer cut off');
  // Told, then disconnected by the transport closing, so that real clients reconnect.
  expect(await withDeadline(disconnected, 3_000, 'the disconnect')).toBe('transport close');
  // Still running: a restart on its state would resume ticking.
  const byes = a.statuses.filter(({ message }) => message === STATUS.shuttingDown);
  expect(byes).toEqual([{ message: STATUS.shuttingDown, running: true }]);
});

// A deploy landing mid-click: an op acked but its answer lost with the socket would be bought twice.
test('close() answers an op whose save is under way before it closes the sockets', async () => {
  let saving!: () => void, release!: () => void;
  const underWay = new Promise<void>((resolve) => (saving = resolve));
  const saved = new Promise<void>((resolve) => (release = resolve));
  const commit = () => {
    saving();
    return saved;
  };
  const own = await startServer({
    tickMs: 100,
    store: { healthy: true, settled: () => saved, commit },
  });
  const [client] = (await connectWelcomed(own.url, clients, 'client')) as [TestClient];
  const buying = client.buy('Apple');
  await withDeadline(underWay, 3_000, 'the save of the buy');
  const [from, closing] = [client.events.mark, own.forkcast.close()];
  await client.waitForStatus(STATUS.shuttingDown, { from });
  release();
  expect((await buying).ack).toEqual({ ok: true, stock: { name: 'Apple', price: grown(14.5) } });
  await closing;
});
