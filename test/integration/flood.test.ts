/** The compiled server as its own process (its event loop is not the clients'): a flood of buys
 * from one client, and a storm of handshakes cut off as by a blip. */
import { once } from 'node:events';

import WebSocket from 'ws';

import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { printFigures, recordFigure } from '../helpers/figures';
import { priceOf } from '../helpers/prices';
import { RawSocket } from '../helpers/raw-socket';
import { withDeadline } from '../helpers/recorder';
import { killServers, spawnServer, type ServerProcess } from '../helpers/server-process';
import {
  connectWelcomed,
  expectBuysApplied,
  expectContiguousSeq,
  isUpdate,
  type TestClient,
} from '../helpers/server';

const FLOOD = 2_000;
const stockOf = (i: number): StockName => STOCK_NAMES[i % STOCK_NAMES.length]!;
/** DESIGN.md: buys are broadcast within 50 ms, plus the state's fsync (CI measured 51 ms once). */
const PROMPT_MS = 50 + 25;
/** A second: a buy held to its end stands out from a stall of the disk of up to half of it. */
const STREAM_MS = 1_000;
/** An ack's deadline behind a flood on a loaded machine. */
const ACK_MS = 15_000;

let clients: TestClient[] = [];

afterEach(() => {
  for (const client of clients) client.close();
  for (const client of clients) expectContiguousSeq(client);
  clients = [];
});

afterAll(async () => {
  await killServers();
  printFigures('flood.test.ts');
});

const serve = (env: Record<string, string> = {}): ServerProcess =>
  spawnServer({ TICK_MS: '1000', LOG_LEVEL: 'info', ...env });

/** Buys one after another until `done`, each with the flood's deadline. */
async function buyInTurn(client: TestClient, done: () => boolean, max = Infinity) {
  const results: Awaited<ReturnType<TestClient['buy']>>[] = [];
  while (!done() && results.length < max)
    results.push(await client.buy(stockOf(results.length), ACK_MS));
  return results;
}

/** One above the flood (main.ts passes OPS_PER_SECOND on), and the storm's, idle until its test. */
let atHigh: string, stormed: ServerProcess;
beforeAll(async () => {
  // Ticking fast fills the history (60 updates, ~9 KB) early in the storm.
  stormed = serve({ TICK_MS: '100', NODE_OPTIONS: '--inspect=127.0.0.1:0' });
  // Compiled servers starting at once on a busy machine can take over 5 s.
  [atHigh] = await Promise.all([
    serve({ OPS_PER_SECOND: '100000' }).url(15_000),
    stormed.url(15_000),
  ]);
}, 20_000);

// Conflation must not starve a steady stream (its window is the model's). First, while it is quiet.
test('a steady stream of buys is broadcast as it goes: 75 ms at the median (50 plus one fsync), none held to the end', async () => {
  const welcomed = await connectWelcomed(atHigh, clients, 'buyer', 'watcher');
  const [buyer, watcher] = welcomed as [TestClient, TestClient];
  const before = buyer.lastUpdate().stocks;
  const mark = watcher.events.mark;

  const startedAt = performance.now();
  const results = await buyInTurn(buyer, () => performance.now() - startedAt >= STREAM_MS);
  expect(results.filter((result) => !result.ack.ok)).toEqual([]);
  await expectBuysApplied(watcher, { from: mark, timeoutMs: 5_000 }, before, results);

  // Ack to update, less the round trip: a held window shows in the median; fsync stalls stay short.
  const lags = results.map(({ name, ack, at, ms }) => {
    const price = ack.ok ? ack.stock.price : Infinity;
    const carried = watcher.events.items.find(
      (event) => isUpdate(event) && priceOf(event.update.stocks, name) >= price,
    );
    return (carried?.at ?? Infinity) - at - ms;
  });
  lags.sort((a, b) => a - b);
  expect(lags[Math.floor(lags.length / 2)]).toBeLessThan(PROMPT_MS);
  expect(lags.at(-1)).toBeLessThan(STREAM_MS / 2);
});

// The limit and refusals: http.test.ts. Here, whether a flood starves a bystander's round trips.
test('2,000 buys back to back under a high limit: all accepted; a bystander keeps being served; exact prices', async () => {
  const welcomed = await connectWelcomed(atHigh, clients, 'flooder', 'bystander');
  const [flooder, bystander] = welcomed as [TestClient, TestClient];
  const before = flooder.lastUpdate().stocks;
  const marks = [flooder, bystander].map((client) => client.events.mark);

  const sentAt = performance.now();
  let flooding = true;
  const flooded = Promise.all(
    Array.from({ length: FLOOD }, (_, i) => flooder.buy(stockOf(i), ACK_MS)),
  ).finally(() => (flooding = false));
  const probes = await buyInTurn(bystander, () => !flooding, 20);
  const results = await flooded;
  const floodMs = Math.max(...results.map((result) => result.at)) - sentAt;

  expect(results.filter((result) => !result.ack.ok)).toEqual([]);
  // Served during the flood: its first buy may queue behind it, so take about as long, no longer.
  expect(probes.length).toBeGreaterThan(0);
  for (const round of probes) {
    expect(round.ack.ok).toBe(true);
    expect(round.ms).toBeLessThan(Math.max(1_000, 1.5 * floodMs));
  }

  const acked = [...results, ...probes];
  for (const [i, client] of [flooder, bystander].entries())
    await expectBuysApplied(client, { from: marks[i]!, timeoutMs: 5_000 }, before, acked);
});

// Enough for the heap per handshake to tell (0.55-1.0 KB measured; ~3.8 KB if greetings were
// kept for recovery), after a warm-up has paid the fixed costs.
const [WARM_UP, HANDSHAKES, CONCURRENCY] = [1_000, 1_500, 100];
const MB = 1024 * 1024;
// Over the baseline, before and after a collection: measured 48-68 and 7-8 MB on Node 20,
// 158-180 and 26-28 MB on Node 24 (its V8 collects later) at 4,000 handshakes.
const [STORM_RSS_BOUND, SETTLED_RSS_BOUND] = [300 * MB, 48 * MB];
const SETTLED_HEAP_PER_HANDSHAKE = 1.8 * 1024;

/** The server's memory through its inspector, after a full collection if `collect`. */
async function inspect(server: ServerProcess) {
  const url = new Promise<string>((resolve) => {
    const check = (): void => {
      const found = /Debugger listening on (ws:\/\/\S+)/.exec(server.stderr())?.[1];
      if (found) resolve(found);
    };
    server.process.stderr?.on('data', check);
    check();
  });
  const ws = new WebSocket(await withDeadline(url, 5_000, 'the inspector URL on stderr'));
  await withDeadline(once(ws, 'open'), 5_000, 'the inspector connection');
  // One call at a time, and no domain enabled: the next message is the answer.
  const call = async (method: string, params: object = {}) => {
    ws.send(JSON.stringify({ id: 1, method, params }));
    const [data] = (await withDeadline(once(ws, 'message'), 20_000, method)) as [Buffer];
    return (JSON.parse(data.toString('utf8')) as { result: unknown }).result;
  };
  const memory = async (collect = true): Promise<NodeJS.MemoryUsage> => {
    if (collect) await call('HeapProfiler.collectGarbage');
    const params = { expression: 'process.memoryUsage()', returnByValue: true };
    return ((await call('Runtime.evaluate', params)) as { result: { value: NodeJS.MemoryUsage } })
      .result.value;
  };
  return { memory, close: () => ws.terminate() };
}

test(`a reconnect storm: ${HANDSHAKES} handshakes, each greeted and cut off, leave RSS bounded and nothing per greeting once collected`, async () => {
  const url = await stormed.url();
  const inspector = await inspect(stormed);
  const starter = (await connectWelcomed(url, clients, 'starter'))[0]!;
  expect((await starter.start()).ack).toEqual({ ok: true, running: true });
  starter.close();
  const rssBefore = (await inspector.memory()).rss;
  // Each is greeted (status, update, history), then cut off as by a blip: recovery keeps it.
  const storm = async (count: number): Promise<void> => {
    let started = 0;
    const worker = async (): Promise<void> => {
      while (started++ < count) {
        const socket = await RawSocket.connect(url);
        const greeting = { timeoutMs: 5_000, what: 'a greeting' };
        await socket.frames
          .waitForCount(3, (frame) => frame.startsWith('42['), greeting)
          .finally(() => socket.close());
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  await storm(WARM_UP);
  const before = await inspector.memory();
  const stormStarted = performance.now();
  await storm(HANDSHAKES);
  recordFigure(`${HANDSHAKES} handshakes`, performance.now() - stormStarted);
  const stormRss = (await inspector.memory(false)).rss - rssBefore;
  const after = await inspector.memory();
  inspector.close();
  const settledRss = after.rss - rssBefore;
  const heapPerHandshake = (after.heapUsed - before.heapUsed) / HANDSHAKES;
  recordFigure('RSS growth at the end of the storm', stormRss / MB, 'MB');
  recordFigure('RSS growth after a full collection', settledRss / MB, 'MB');
  recordFigure('heap kept per handshake', heapPerHandshake, 'B');

  expect(stormRss).toBeLessThan(STORM_RSS_BOUND);
  expect(settledRss).toBeLessThan(SETTLED_RSS_BOUND);
  expect(settledRss).toBeLessThan(stormRss);
  expect(heapPerHandshake).toBeLessThan(SETTLED_HEAP_PER_HANDSHAKE);
}, 40_000);
