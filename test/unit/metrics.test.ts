import { register as globalRegistry } from 'prom-client';

import { createMetrics } from '../../server/metrics';
import { parsePrometheusText, sumOf, valueOf, type Exposition } from '../helpers/prometheus';

const read = async (metrics: ReturnType<typeof createMetrics>): Promise<Exposition> =>
  parsePrometheusText(await metrics.scrape());

/** The series of `metric` as "transport op result reason le value", `nonZero` ones or all. */
const seriesOf = (exposition: Exposition, nonZero = false, metric = 'forkcast_ops_total') =>
  exposition.samples
    .filter(({ name, value }) => name === metric && (!nonZero || value !== 0))
    .map(({ labels: { transport, op, result, reason, le }, value }) =>
      [transport, op, result, reason, le, `${value}`].filter(Boolean).join(' '),
    );

const REASONS = ['invalid', 'rate_limited', 'forbidden', 'unavailable', 'internal'];
const OPS = ['start', 'stop', 'buy'];
const TRANSPORTS = ['socket', 'http'];
const BUCKETS = '0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 +Inf'.split(' ');

test("a new app's own series all start at zero, none in the global registry", async () => {
  const metrics = await read(createMetrics());
  const own = [...metrics.types].filter(([name]) => !/_(nodejs|process)_/.test(name));
  expect(Object.fromEntries(own)).toEqual({
    forkcast_connected_clients: 'gauge',
    forkcast_updates_broadcast_total: 'counter',
    forkcast_update_deliveries_total: 'counter',
    forkcast_ops_total: 'counter',
    forkcast_op_ack_seconds: 'histogram',
    forkcast_ticker_restarts_total: 'counter',
  });
  for (const [name] of own.filter(([, type]) => type !== 'histogram'))
    expect([name, sumOf(metrics, name)]).toEqual([name, 0]);
  // A fixed set of series, all present from the start, so rate() sees the first refusal.
  const results = ['ok', ...REASONS.map((reason) => `rejected ${reason}`)];
  const series = OPS.flatMap((op) => results.map((result) => `${op} ${result}`));
  const zeros = [...series, 'unknown rejected invalid'].flatMap((zero) =>
    TRANSPORTS.map((transport) => `${transport} ${zero} 0`),
  );
  expect(seriesOf(metrics).sort()).toEqual(zeros.sort());
  expect(seriesOf(metrics, false, 'forkcast_op_ack_seconds_bucket')).toEqual(
    TRANSPORTS.flatMap((transport) =>
      [...OPS, 'unknown'].flatMap((op) => BUCKETS.map((le) => `${transport} ${op} ${le} 0`)),
    ),
  );
  expect(globalRegistry.getMetricsAsArray()).toEqual([]);
});

// What each instrument counts against what clients saw: test/integration/http.test.ts.
test('two apps in one process count apart, both beside the process metrics; an ack lands in its bucket', async () => {
  const [one, two] = [createMetrics(() => 3), createMetrics()];
  one.answered('buy', 'ok', 'socket', 0.002);
  one.answered('buy', 'rate_limited', 'http', 0.0001);
  two.answered('stop', 'forbidden', 'socket', 0.004);

  const [a, b] = [await read(one), await read(two)];
  expect(valueOf(a, 'forkcast_connected_clients')).toBe(3);
  expect(seriesOf(a, true)).toEqual(['socket buy ok 1', 'http buy rejected rate_limited 1']);
  expect(sumOf(a, 'forkcast_op_ack_seconds_sum', { op: 'buy' })).toBeCloseTo(0.0021);
  const fast = { op: 'buy', le: '0.001' };
  expect(valueOf(a, 'forkcast_op_ack_seconds_bucket', { ...fast, transport: 'http' })).toBe(1);
  expect(valueOf(a, 'forkcast_op_ack_seconds_bucket', { ...fast, transport: 'socket' })).toBe(0);
  expect(valueOf(b, 'forkcast_connected_clients')).toBe(0);
  expect(seriesOf(b, true)).toEqual(['socket stop rejected forbidden 1']);
  // Both show the process's metrics, collected once.
  expect(b.types.get('forkcast_nodejs_eventloop_lag_seconds')).toBe('gauge');
});
