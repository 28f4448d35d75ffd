/**
 * Connection state recovery on one node: a client that drops for a moment gets every update it
 * missed, in order, and no greeting that would repeat one; a client the server cannot place
 * (another server's session, or one that left before any broadcast) is greeted as a new one.
 */
import { isStatus, isUpdate, startServer, TestClient, type TestServer } from '../helpers/server';

let server: TestServer;
const clients: TestClient[] = [];

beforeEach(async () => {
  server = await startServer({ tickMs: 40 });
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.close();
  await server.forkcast.close();
});

async function join(name: string, url = server.url): Promise<TestClient> {
  const client = await TestClient.connect(url, name);
  clients.push(client);
  return client;
}

/**
 * Drops the client's connection below Socket.IO: the server sees its transport close, as in a
 * network blip, not a Socket.IO disconnect (after which it would not keep the session).
 */
async function drop(client: TestClient): Promise<void> {
  const gone = new Promise<string>((resolve) => client.socket.once('disconnect', resolve));
  client.socket.io.engine.close();
  await expect(gone).resolves.toBe('forced close');
}

async function reconnect(client: TestClient): Promise<void> {
  const back = new Promise<void>((resolve) => client.socket.once('connect', () => resolve()));
  client.socket.connect();
  await back;
}

function seqsOf(client: TestClient, from = 0): number[] {
  return client.events
    .since(from)
    .filter(isUpdate)
    .map((event) => event.update.seq);
}

function expectConsecutive(seqs: readonly number[]): void {
  const breaks = seqs.flatMap((seq, i) => (i > 0 && seq !== (seqs[i - 1] ?? 0) + 1 ? [i] : []));
  expect({ seqs, breaks }).toEqual({ seqs, breaks: [] });
}

test('a client that drops for a moment gets what it missed, in order, and no second greeting', async () => {
  const [a, b] = [await join('a'), await join('b')];
  expect((await a.start()).ack).toEqual({ ok: true, running: true });
  await a.waitForUpdates(3, { from: 0 });

  await drop(a);
  const dropped = a.events.mark;
  const lastBefore = seqsOf(a).at(-1) ?? 0;
  // Several updates go out while `a` is away.
  await b.events.waitFor((event) => isUpdate(event) && event.update.seq >= lastBefore + 5, {
    timeoutMs: 3_000,
    what: 'b: five updates after the drop',
  });
  await reconnect(a);
  expect(a.socket.recovered).toBe(true);
  const newestMeanwhile = seqsOf(b).at(-1) ?? 0;
  expect(newestMeanwhile - lastBefore).toBeGreaterThanOrEqual(5);

  await a.events.waitFor((event) => isUpdate(event) && event.update.seq > newestMeanwhile, {
    from: dropped,
    timeoutMs: 3_000,
    what: 'an update newer than those missed',
  });
  // Every update since the first, each exactly once and in order: the missed ones replayed,
  // then the live ones, with no snapshot repeating one of them.
  expectConsecutive(seqsOf(a));
  expect(seqsOf(a, dropped)[0]).toBe(lastBefore + 1);
  // The EHLO status says it is connected again; a recovered client gets no new history.
  expect(
    a.events
      .since(dropped)
      .filter(isStatus)
      .map((event) => event.status.message),
  ).toEqual(['EHLO OK Connected']);
});

test('a client whose session this server does not know is greeted as a new one', async () => {
  const a = await join('a');
  expect((await a.start()).ack).toEqual({ ok: true, running: true });
  await a.waitForUpdates(2, { from: 0 });
  await drop(a);

  // The same client (same pid and offset) comes back to a server that never saw it.
  const other = await startServer({ tickMs: 40 });
  try {
    // The manager opens each new connection from its `uri`: point it at the other server.
    (a.socket.io as unknown as { uri: string }).uri = other.url;
    const mark = a.events.mark;
    await reconnect(a);
    expect(a.socket.recovered).toBe(false);
    const greeting = await a.nextUpdate({ from: mark });
    expect(greeting).toEqual(other.forkcast.ticker.snapshot());
  } finally {
    a.socket.close();
    await other.forkcast.close();
  }
});

/**
 * A client's recovery offset comes from broadcasts alone (the greeting is not kept for the
 * recovery window), so one that drops before its first broadcast has none, and is greeted
 * afresh rather than recovered without a snapshot.
 */
test('a client that drops before any broadcast comes back as a new one, greeted in full', async () => {
  const a = await join('early leaver');
  await a.welcome();
  await drop(a);
  const back = a.events.mark;
  await reconnect(a);
  expect(a.socket.recovered).toBe(false);
  const welcome = await a.events.waitForCount(2, () => true, {
    from: back,
    timeoutMs: 3_000,
    what: 'the second welcome',
  });
  expect(welcome).toEqual([
    expect.objectContaining({
      kind: 'status',
      status: { message: 'EHLO OK Connected', running: false },
    }),
    expect.objectContaining({ kind: 'update', update: server.forkcast.ticker.snapshot() }),
  ]);
});
