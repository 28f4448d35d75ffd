/**
 * GET /metrics of the real server (createApp on a random loopback port, the real forked ticker
 * child) with real Socket.IO clients: every count is checked against what the clients saw.
 */
import { register as globalRegistry, Registry } from 'prom-client';

import { STATUS } from '../../protocol/events';
import {
  parsePrometheusText,
  samplesOf,
  scrape,
  sumOf,
  valueOf,
  type Exposition,
} from '../helpers/prometheus';
import {
  expectContiguousSeq,
  isUpdate,
  startServer,
  TestClient,
  type TestServer,
} from '../helpers/server';
import { withDeadline } from '../helpers/recorder';

const TICK_MS = 100;
const RESTARTING = 'the ticker is restarting; try again in a moment';

let servers: TestServer[] = [];
let clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((server) => server.forkcast.close()));
  for (const client of clients) expectContiguousSeq(client);
  servers = [];
  clients = [];
});

async function serve(options: Parameters<typeof startServer>[0] = { tickMs: TICK_MS }) {
  const server = await startServer(options);
  servers.push(server);
  return server;
}

async function join(server: TestServer, name: string, token?: string): Promise<TestClient> {
  const client = await TestClient.connect(
    server.url,
    name,
    token === undefined ? {} : { auth: { token } },
  );
  clients.push(client);
  await client.welcome();
  return client;
}

/** Resolves once the server has seen `client` go (its socket left the namespace). */
async function leave(server: TestServer, client: TestClient): Promise<void> {
  const socket = server.forkcast.io.sockets.sockets.get(client.socket.id ?? '');
  if (!socket) throw new Error(`${client.name} is not connected`);
  const gone = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()));
  client.close();
  await withDeadline(gone, 3_000, `the server to see ${client.name} leave`);
}

/** `forkcast_ops_total` as {"op result reason": value}, every series included. */
function opsOf(exposition: Exposition): Record<string, number> {
  return Object.fromEntries(
    samplesOf(exposition, 'forkcast_ops_total').map(({ labels, value }) => [
      [labels['op'], labels['result'], labels['reason']].filter(Boolean).join(' '),
      value,
    ]),
  );
}

/** What changed between two readings of `forkcast_ops_total`, leaving out what did not. */
function opsDelta(before: Exposition, after: Exposition): Record<string, number> {
  const start = opsOf(before);
  return Object.fromEntries(
    Object.entries(opsOf(after))
      .map(([key, value]) => [key, value - (start[key] ?? 0)] as const)
      .filter(([, delta]) => delta !== 0),
  );
}

const counter = (exposition: Exposition, name: string): number => valueOf(exposition, name);

/** The ack latency histogram of one op: well formed, and its count and sum. */
function ackHistogram(exposition: Exposition, op: string): { count: number; sum: number } {
  const buckets = samplesOf(exposition, 'forkcast_op_ack_seconds_bucket').filter(
    (sample) => sample.labels['op'] === op,
  );
  const counts = buckets.map((bucket) => bucket.value);
  expect(counts).toEqual([...counts].sort((a, b) => a - b));
  expect(buckets.map((bucket) => bucket.labels['le'])).toEqual([
    ...['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5'],
    ...['1', '2.5', '+Inf'],
  ]);
  const count = valueOf(exposition, 'forkcast_op_ack_seconds_count', { op });
  expect(counts.at(-1)).toBe(count);
  return { count, sum: valueOf(exposition, 'forkcast_op_ack_seconds_sum', { op }) };
}

const EVERY_OP_SERIES = [
  ...['start', 'stop', 'buy'].flatMap((op) => [
    `${op} ok`,
    ...['invalid', 'rate_limited', 'forbidden', 'unavailable', 'internal'].map(
      (reason) => `${op} rejected ${reason}`,
    ),
  ]),
  'unknown rejected invalid',
].sort();

test("GET /metrics answers Prometheus text: the app's series from zero, and the process's", async () => {
  const server = await serve();
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe(Registry.PROMETHEUS_CONTENT_TYPE);
  const metrics = parsePrometheusText(await response.text());

  expect(
    Object.fromEntries([...metrics.types].filter(([name]) => !/_(nodejs|process)_/.test(name))),
  ).toEqual({
    forkcast_connected_clients: 'gauge',
    forkcast_updates_broadcast_total: 'counter',
    forkcast_update_deliveries_total: 'counter',
    forkcast_ops_total: 'counter',
    forkcast_op_ack_seconds: 'histogram',
    forkcast_ticker_restarts_total: 'counter',
  });
  for (const name of [
    'forkcast_connected_clients',
    'forkcast_updates_broadcast_total',
    'forkcast_update_deliveries_total',
    'forkcast_ticker_restarts_total',
  ]) {
    expect([name, counter(metrics, name)]).toEqual([name, 0]);
  }
  // A fixed set of series, all present from the start.
  expect(Object.keys(opsOf(metrics)).sort()).toEqual(EVERY_OP_SERIES);
  expect(Object.values(opsOf(metrics)).every((value) => value === 0)).toBe(true);
  for (const op of ['start', 'stop', 'buy', 'unknown']) {
    expect(ackHistogram(metrics, op)).toEqual({ count: 0, sum: 0 });
  }

  // The process's own metrics, event-loop lag among them.
  expect(metrics.types.get('forkcast_nodejs_eventloop_lag_seconds')).toBe('gauge');
  expect(metrics.types.get('forkcast_nodejs_eventloop_lag_p99_seconds')).toBe('gauge');
  expect(metrics.types.get('forkcast_process_cpu_seconds_total')).toBe('counter');
  expect(counter(metrics, 'forkcast_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  expect(counter(metrics, 'forkcast_process_cpu_seconds_total')).toBeGreaterThan(0);

  // Nothing went into prom-client's global registry.
  expect(globalRegistry.getMetricsAsArray()).toEqual([]);
});

test('each update broadcast counts once, and delivers once per connected client, whom the gauge counts', async () => {
  const server = await serve();
  const connected = async (): Promise<number> =>
    counter(await scrape(server.url), 'forkcast_connected_clients');
  expect(await connected()).toBe(0);
  const [a, b] = [await join(server, 'a'), await join(server, 'b')];
  expect(await connected()).toBe(2);
  const before = await scrape(server.url);
  const seqBefore = server.forkcast.ticker.snapshot().seq;

  /** Runs the ticker for `ticks` updates, stops it, and returns the updates `a` saw. */
  async function runFor(ticks: number, everyone: TestClient[]): Promise<number> {
    const mark = a.events.mark;
    const started = await a.start();
    expect(started.ack).toEqual({ ok: true, running: true });
    await a.waitForUpdates(ticks, { from: started.index });
    // The stop's reply follows every update the child sent before it, so once it is
    // acknowledged nothing more is broadcast; the barrier lets every client receive it all.
    expect((await a.stop()).ack).toEqual({ ok: true, running: false });
    for (const client of everyone) await client.sync();
    return a.events.since(mark).filter(isUpdate).length;
  }

  // Two clients: two deliveries per update.
  const mark = b.events.mark;
  const first = await runFor(3, [a, b]);
  const middle = await scrape(server.url);
  const updates1 =
    counter(middle, 'forkcast_updates_broadcast_total') -
    counter(before, 'forkcast_updates_broadcast_total');
  expect(updates1).toBe(first);
  expect(b.events.since(mark).filter(isUpdate)).toHaveLength(first);
  expect(
    counter(middle, 'forkcast_update_deliveries_total') -
      counter(before, 'forkcast_update_deliveries_total'),
  ).toBe(2 * first);

  // A third client: three per update; its welcome snapshot is not a broadcast.
  const c = await join(server, 'c');
  const second = await runFor(2, [a, b, c]);
  const after = await scrape(server.url);
  expect(
    counter(after, 'forkcast_updates_broadcast_total') -
      counter(before, 'forkcast_updates_broadcast_total'),
  ).toBe(first + second);
  expect(
    counter(after, 'forkcast_update_deliveries_total') -
      counter(before, 'forkcast_update_deliveries_total'),
  ).toBe(2 * first + 3 * second);
  // And the count is the seq the clients saw advance.
  expect(server.forkcast.ticker.snapshot().seq - seqBefore).toBe(first + second);
  expect(c.updates).toHaveLength(1 + second);
  expect(await connected()).toBe(3);
  await leave(server, c);
  expect(await connected()).toBe(2);
});

test('ops count by op and result, and the ack latency histogram counts every answer', async () => {
  const server = await serve({ tickMs: TICK_MS, opsPerSecond: 3 });
  const [a, flooder] = [await join(server, 'a'), await join(server, 'flooder')];
  const before = await scrape(server.url);
  const roundTrips: number[] = [];

  let sent = performance.now();
  const good = await a.buy('Apple');
  roundTrips.push(performance.now() - sent);
  expect(good.ack).toMatchObject({ ok: true, stock: { name: 'Apple' } });
  sent = performance.now();
  const bad = await a.emitRaw('buy', 'Nokia');
  roundTrips.push(performance.now() - sent);
  expect(bad.ack).toMatchObject({ ok: false, error: expect.stringMatching(/^unknown stock/) });
  // Unknown events are refused before the rate limit, so this one costs no budget.
  expect((await a.emitRaw('sell', 'Apple')).ack).toEqual({
    ok: false,
    error: 'unknown event "sell"',
  });
  // Four at once against a budget of three a second: the last is refused.
  const burst = await Promise.all([1, 2, 3, 4].map(() => flooder.stop()));
  expect(burst.map(({ ack }) => ack.ok)).toEqual([true, true, true, false]);
  expect(burst[3]?.ack).toMatchObject({ error: expect.stringMatching(/^too many requests/) });

  const after = await scrape(server.url);
  expect(opsDelta(before, after)).toEqual({
    'buy ok': 1,
    'buy rejected invalid': 1,
    'unknown rejected invalid': 1,
    'stop ok': 3,
    'stop rejected rate_limited': 1,
  });

  // One observation per answered op, per op and in all.
  const buy = ackHistogram(after, 'buy');
  expect([buy.count, ackHistogram(after, 'stop').count]).toEqual([2, 4]);
  expect(ackHistogram(after, 'unknown').count).toBe(1);
  expect(ackHistogram(after, 'start').count).toBe(0);
  expect(sumOf(after, 'forkcast_op_ack_seconds_count')).toBe(sumOf(after, 'forkcast_ops_total'));
  // In seconds, and inside the round trips the client measured (in milliseconds).
  expect(buy.sum).toBeGreaterThan(0);
  expect(buy.sum * 1_000).toBeLessThanOrEqual(roundTrips.reduce((sum, ms) => sum + ms, 0));
});

test('a killed ticker child counts as a restart, and ops refused meanwhile as unavailable', async () => {
  const server = await serve();
  const a = await join(server, 'a');
  expect(counter(await scrape(server.url), 'forkcast_ticker_restarts_total')).toBe(0);

  for (const kill of [1, 2]) {
    const mark = a.events.mark;
    const before = await scrape(server.url);
    process.kill(server.forkcast.ticker.pid ?? 0, 'SIGKILL');
    await a.waitForStatus(STATUS.tickerLost, { from: mark });
    // The outage is 100 ms or more; an op sent now is almost surely refused. Either way the
    // series it lands in must match its answer.
    const { ack } = await a.buy('Apple');
    if (!ack.ok) expect(ack.error).toBe(RESTARTING);
    const during = await scrape(server.url);
    expect(opsDelta(before, during)).toEqual(
      ack.ok ? { 'buy ok': 1 } : { 'buy rejected unavailable': 1 },
    );

    await a.waitForStatus(STATUS.tickerBack, { from: mark });
    expect(counter(await scrape(server.url), 'forkcast_ticker_restarts_total')).toBe(kill);
  }
});

test('two apps in one process count independently', async () => {
  const TOKEN = 'metrics-test-token';
  const [one, two] = [await serve(), await serve({ tickMs: TICK_MS, controlToken: TOKEN })];
  const a = await join(one, 'a');
  const [watcher] = [await join(two, 'watcher'), await join(two, 'controller', TOKEN)];
  if (!watcher) throw new Error('unreachable');
  const [before1, before2] = [await scrape(one.url), await scrape(two.url)];

  const mark = a.events.mark;
  expect((await a.buy('Microsoft')).ack).toMatchObject({ ok: true });
  // The buy's update follows within 50 ms; once a has it, it has been counted.
  await a.nextUpdate({ from: mark });
  const refused = await watcher.buy('Microsoft');
  expect(refused.ack).toMatchObject({ ok: false, error: expect.stringMatching(/control token/) });

  const [after1, after2] = [await scrape(one.url), await scrape(two.url)];
  expect([opsDelta(before1, after1), opsDelta(before2, after2)]).toEqual([
    { 'buy ok': 1 },
    { 'buy rejected forbidden': 1 },
  ]);
  expect([
    counter(after1, 'forkcast_connected_clients'),
    counter(after2, 'forkcast_connected_clients'),
  ]).toEqual([1, 2]);
  expect([
    counter(after1, 'forkcast_update_deliveries_total'),
    counter(after2, 'forkcast_update_deliveries_total'),
  ]).toEqual([1, 0]);
  expect([
    sumOf(after1, 'forkcast_op_ack_seconds_count'),
    sumOf(after2, 'forkcast_op_ack_seconds_count'),
  ]).toEqual([1, 1]);
  // Both show the process's metrics.
  for (const metrics of [after1, after2]) {
    expect(metrics.types.get('forkcast_nodejs_eventloop_lag_seconds')).toBe('gauge');
  }
  expect(globalRegistry.getMetricsAsArray()).toEqual([]);
});
