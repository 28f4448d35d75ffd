/**
 * GET /metrics of the real server with real clients: what realtime reports is checked against
 * what the clients saw. The instruments themselves: test/unit/metrics.test.ts; a restart and the
 * ops refused meanwhile: test/integration/supervision.test.ts.
 */
import { scrape, sumOf, valueOf, type Exposition } from '../helpers/prometheus';
import { withDeadline } from '../helpers/recorder';
import {
  expectContiguousSeq,
  isUpdate,
  startServer,
  TestClient,
  type TestServer,
} from '../helpers/server';

const TOKEN = 'metrics-test-token';
let server: TestServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  server = await startServer({ tickMs: 100, opsPerSecond: 3, controlToken: TOKEN });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await server.forkcast.close();
  for (const client of clients) expectContiguousSeq(client);
});

async function join(name: string, token?: string): Promise<TestClient> {
  const client = await TestClient.connect(server.url, name, token ? { auth: { token } } : {});
  clients.push(client);
  await client.welcome();
  return client;
}

const ops = (metrics: Exposition, op: string, result: string, reason?: string): number =>
  valueOf(metrics, 'forkcast_ops_total', { op, result, ...(reason ? { reason } : {}) });

test('updates, deliveries, clients, ops and ack latencies count what the clients saw', async () => {
  const before = await scrape(server.url);
  expect(valueOf(before, 'forkcast_connected_clients')).toBe(0);
  const [controller, watcher] = [await join('controller', TOKEN), await join('watcher')];
  expect(valueOf(await scrape(server.url), 'forkcast_connected_clients')).toBe(2);
  // After each client's welcome: its snapshot is not a broadcast.
  const marks = new Map<TestClient, number>(clients.map((client) => [client, client.events.mark]));

  const started = await controller.start();
  await controller.waitForUpdates(3, { from: started.index });
  expect((await controller.stop()).ack).toEqual({ ok: true, running: false });
  // Each within its own budget of three a second; an unknown event costs none.
  const [buyer, flooder] = [await join('buyer', TOKEN), await join('flooder', TOKEN)];
  for (const client of [buyer, flooder]) marks.set(client, client.events.mark);
  const mark = controller.events.mark;
  expect((await buyer.buy('Apple')).ack).toMatchObject({ ok: true });
  await controller.nextUpdate({ from: mark });
  expect((await buyer.emitRaw('buy', 'Nokia')).ack).toMatchObject({ ok: false });
  expect((await buyer.emitRaw('sell', 'Apple')).ack).toMatchObject({ ok: false });
  expect((await watcher.buy('Apple')).ack).toMatchObject({ ok: false });
  // Four at once against a budget of three a second: the last is refused.
  const burst = await Promise.all([1, 2, 3, 4].map(() => flooder.stop()));
  expect(burst.map(({ ack }) => ack.ok)).toEqual([true, true, true, false]);
  for (const client of clients) await client.sync();

  const after = await scrape(server.url);
  const seen = (client: TestClient) =>
    client.events.since(marks.get(client) ?? 0).filter(isUpdate).length;
  const delta = (name: string) => sumOf(after, name) - sumOf(before, name);
  expect(delta('forkcast_updates_broadcast_total')).toBe(seen(controller));
  expect(delta('forkcast_update_deliveries_total')).toBe(clients.map(seen).reduce((a, b) => a + b));
  expect([
    ops(after, 'start', 'ok'),
    ops(after, 'stop', 'ok'),
    ops(after, 'stop', 'rejected', 'rate_limited'),
    ops(after, 'buy', 'ok'),
    ops(after, 'buy', 'rejected', 'invalid'),
    ops(after, 'buy', 'rejected', 'forbidden'),
    ops(after, 'unknown', 'rejected', 'invalid'),
    // `sell`, and each client's sync(), an unknown event too.
  ]).toEqual([1, 4, 1, 1, 1, 1, 1 + clients.length]);
  // One ack observation per answer.
  expect(sumOf(after, 'forkcast_op_ack_seconds_count')).toBe(sumOf(after, 'forkcast_ops_total'));
  expect(valueOf(after, 'forkcast_op_ack_seconds_count', { op: 'stop' })).toBe(5);
  // In seconds: three buys over loopback take milliseconds.
  const buySeconds = valueOf(after, 'forkcast_op_ack_seconds_sum', { op: 'buy' });
  expect(buySeconds).toBeGreaterThan(0);
  expect(buySeconds).toBeLessThan(0.5);

  // The gauge follows a client leaving.
  const socket = server.forkcast.io.sockets.sockets.get(flooder.socket.id ?? '');
  const gone = new Promise<void>((resolve) => socket?.once('disconnect', () => resolve()));
  flooder.close();
  await withDeadline(gone, 3_000, 'the server to see flooder leave');
  expect(valueOf(await scrape(server.url), 'forkcast_connected_clients')).toBe(3);
});
