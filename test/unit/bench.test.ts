/**
 * The bench's pure parts: frame parsing, statistics, /proc readings, report arithmetic and
 * tables, settings, and how clients are spread. test/integration/bench.test.ts is the smoke run.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  infoField,
  leaderOf,
  summarizeCluster,
  type ClusterResult,
  type ClusterScenario,
} from '../../bench/cluster';
import {
  buyFrame,
  isPing,
  isSocketIoUpdate,
  parseAck,
  seqAndTs,
  socketIoUrl,
} from '../../bench/frames';
import { parseRss, parseStat, rssBytes, treeCpuMicros } from '../../bench/proc';
import {
  clusterNodeTable,
  clusterRatios,
  clusterRatioTable,
  clusterTable,
  ratios,
  ratioTable,
  table,
} from '../../bench/report';
import { optionsFromEnv, runBench } from '../../bench/run';
import {
  shares,
  stormState,
  workerShares,
  type Measured,
  type ScenarioResult,
} from '../../bench/scenario';
import { portIn } from '../../bench/servers';
import { median } from '../../bench/startup';
import {
  BUCKET_MS,
  countOf,
  merge,
  record,
  summarize,
  type Histogram,
  type Summary,
} from '../../bench/stats';
import { nodeOf, type NodeReport, type WorkerReport } from '../../bench/worker-protocol';
import { SOCKET_PATH, type UpdatePayload } from '../../protocol/events';

const UPDATE: UpdatePayload = {
  stocks: [
    { name: 'Apple', price: 14.5 },
    { name: 'Microsoft', price: 38.70000000000001 },
    { name: 'Facebook', price: 33.9796875 },
  ],
  running: true,
  seq: 123,
  ts: 1764230000123,
};

/** An Engine.IO message carrying a Socket.IO event, as the server writes it on the socket. */
const event = (name: string, payload: unknown): Buffer =>
  Buffer.from(`42${JSON.stringify([name, payload])}`);
/** An Engine.IO message carrying the Socket.IO acknowledgement of the event with `id`. */
const ack = (id: number, result: unknown): Buffer =>
  Buffer.from(`43${id}${JSON.stringify([result])}`);
const text = (frame: string): Buffer => Buffer.from(frame);

describe('frames', () => {
  test('socketIoUrl dials the WebSocket transport directly, under the server path', () => {
    const url = socketIoUrl(4567);
    expect(url).toBe('ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket');
    expect(new URL(url).pathname.startsWith(SOCKET_PATH)).toBe(true);
    expect(socketIoUrl(80, '/ws/')).toBe('ws://127.0.0.1:80/ws/?EIO=4&transport=websocket');
  });

  // Each frame a client sees is the ping, an update, an ack (its id and ok) or none of them.
  type Kind = 'ping' | 'update' | { id: number; ok: boolean } | null;
  test.each<[string, Kind, Buffer]>([
    ['the ping', 'ping', text('2')],
    ['a pong', null, text('3')],
    ['a probe', null, text('2probe')],
    ['an empty frame', null, Buffer.alloc(0)],
    ['an update event', 'update', event('update', UPDATE)],
    ['a status event', null, event('status', { message: 'started', running: true })],
    ['a history event', null, event('history', { updates: [UPDATE] })],
    ['the namespace connect', null, text('40{"sid":"abc"}')],
    ['the Engine.IO open', null, text('0{"sid":"abc","pingInterval":25000}')],
    ['the bare update prefix', null, text('42["update",')],
    ['a bare JSON update', null, text(JSON.stringify(UPDATE))],
    ['an ack', { id: 12, ok: true }, ack(12, { ok: true, stock: { name: 'Apple', price: 1 } })],
    ['a refusal', { id: 7, ok: false }, ack(7, { ok: false, error: 'too many operations' })],
    [
      'a refusal quoting "ok":true',
      { id: 3, ok: false },
      ack(3, { ok: false, error: '"ok":true' }),
    ],
    ['a truncated ack', null, text('431')],
    ['an ack without an id', null, text('43[{"ok":true}]')],
    ['an ack with a non-numeric id', null, text('43x1[{"ok":true}]')],
  ])('%s is %j', (_, kind, frame) => {
    expect([isPing(frame), isSocketIoUpdate(frame), parseAck(frame)]).toEqual([
      kind === 'ping',
      kind === 'update',
      typeof kind === 'object' ? kind : null,
    ]);
  });

  test('seqAndTs reads seq and ts from an update in either framing and any key order', () => {
    const reordered = { ts: 1764230000999, seq: 7, running: false, stocks: UPDATE.stocks };
    expect(seqAndTs(event('update', UPDATE))).toEqual({ seq: 123, ts: 1764230000123 });
    expect(seqAndTs(text(JSON.stringify(UPDATE)))).toEqual({ seq: 123, ts: 1764230000123 });
    expect(seqAndTs(event('update', reordered))).toEqual({ seq: 7, ts: 1764230000999 });
    // NaN for a missing key rather than a number that could pass.
    expect(seqAndTs(text(JSON.stringify({ stocks: UPDATE.stocks })))).toEqual({
      seq: Number.NaN,
      ts: Number.NaN,
    });
  });

  test('buyFrame asks for an acknowledgement with the given id', () => {
    expect(buyFrame(7, 'Apple')).toBe('427["buy","Apple"]');
    expect(buyFrame(0, 'Microsoft')).toBe('420["buy","Microsoft"]');
    expect(buyFrame(12345, 'Face"book')).toBe('4212345["buy","Face\\"book"]');
  });
});

describe('stats', () => {
  const histogramOf = (values: readonly number[]): Histogram => {
    const histogram: Histogram = new Map();
    for (const value of values) record(histogram, value);
    return histogram;
  };
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

  test('buckets are 0.01 ms wide, and a negative latency counts as 0', () => {
    expect(BUCKET_MS).toBe(0.01);
    expect([...histogramOf([1.234, 1.236, 1.2341, -0.5, -1000, 0.004]).entries()]).toEqual([
      [123, 2],
      [124, 1],
      [0, 3],
    ]);
  });

  test('nearest-rank percentiles, whatever order the samples came in', () => {
    const summary = summarize(histogramOf([...oneToHundred].reverse()));
    expect(summary).toEqual({
      count: 100,
      p50: expect.closeTo(50, 9),
      p90: expect.closeTo(90, 9),
      p99: expect.closeTo(99, 9),
      max: expect.closeTo(100, 9),
    });
    // p99 is the smallest value with at least 99 % of samples at or below it.
    expect(summarize(histogramOf([...Array<number>(99).fill(1), 1000])).p99).toBeCloseTo(1, 9);
    expect(summarize(histogramOf([...Array<number>(98).fill(1), 1000, 1000])).p99).toBeCloseTo(
      1000,
      9,
    );
  });

  test('an empty histogram summarises to NaN, never 0', () => {
    const nan = Number.NaN;
    expect(summarize(new Map())).toEqual({ count: 0, p50: nan, p90: nan, p99: nan, max: nan });
    expect(countOf(new Map())).toBe(0);
  });

  test('merging the workers’ entries adds counts and gives the figures of one histogram', () => {
    const odd = histogramOf(oneToHundred.filter((value) => value % 2 === 1));
    const even = histogramOf([...oneToHundred.filter((value) => value % 2 === 0), 1]);
    // Entries travel over IPC as JSON.
    const entries = JSON.parse(JSON.stringify([...even.entries()])) as [number, number][];
    const merged = merge(odd, entries);
    expect(merged).toBe(odd);
    expect(merged.get(100)).toBe(2);
    expect(countOf(merged)).toBe(101);
    expect(summarize(merged)).toEqual(summarize(histogramOf([...oneToHundred, 1])));
  });
});

describe('proc', () => {
  // Fields 14 to 17 are utime, stime, cutime, cstime; distinct values catch an off-by-one.
  const fields = 'S 1 1 1 0 -1 4194560 2000 0 12 0 1234 567 89 10 20 0 3 0 21547 1051 412';

  test('parseStat counts fields from the last ")" of the command name, and wants them all', () => {
    expect(parseStat(`4242 (node) ${fields}\n`)).toEqual({ utime: 1234, stime: 567 });
    expect(parseStat(`4242 (my (odd) server) 1 2) ${fields}\n`)).toEqual({
      utime: 1234,
      stime: 567,
    });
    expect(() => parseStat('4242 (node) S 1 1')).toThrow(/^unexpected \/proc stat line: 4242/);
  });

  test('parseRss reads VmRSS in bytes, and fails without it', () => {
    const status = 'Name:\tnode\nVmHWM:\t   99999 kB\nVmRSS:\t   19680 kB\nRssAnon:\t 1 kB\n';
    expect(parseRss(status)).toBe(19680 * 1024);
    expect(() => parseRss('Name:\tnode\nVmHWM:\t 99999 kB\n')).toThrow('no VmRSS line');
  });

  test('the readings of this process agree with Node’s own CPU usage and RSS', () => {
    const before = process.cpuUsage();
    const cpu = treeCpuMicros(process.pid);
    const after = process.cpuUsage();
    // Clock ticks are 10 ms, and the reading falls between the two cpuUsage() calls.
    expect(cpu).toBeGreaterThan(0);
    expect(cpu).toBeGreaterThanOrEqual(0.8 * (before.user + before.system) - 20_000);
    expect(cpu).toBeLessThanOrEqual(1.2 * (after.user + after.system) + 20_000);
    const rss = rssBytes(process.pid);
    expect(rss).toBeGreaterThan(0.8 * process.memoryUsage().rss);
    expect(rss).toBeLessThan(1.25 * process.memoryUsage().rss);
  });
});

const summary = (p50: number, p99: number): Summary => ({
  count: 1000,
  p50,
  p90: (p50 + p99) / 2,
  p99,
  max: p99 * 2,
});

/** A finished run; only what the report reads needs to vary. */
function result(overrides: Partial<ScenarioResult> = {}): ScenarioResult {
  const clients = overrides.clients ?? 1000;
  return {
    name: 'fan-out',
    kind: 'forkcast',
    watchers: clients,
    buyers: 0,
    buysPerSecond: 0,
    tickMs: 1000,
    clients,
    seconds: 20,
    broadcasts: 20,
    delivered: 20 * clients,
    deliveredPerSecond: clients,
    missed: 0,
    late: 0,
    outOfOrder: 0,
    lost: 0,
    latencyMs: summary(1, 4),
    serverCpuPercent: 10,
    loadCpuPercent: 40,
    serverAckWithin: null,
    cpuMicrosPerUpdate: 5,
    memoryPerConnectionKB: 10,
    serverStartMs: 300,
    buysSent: 0,
    acksOk: 0,
    acksRejected: 0,
    acksPerSecond: 0,
    ackLatencyMs: summary(Number.NaN, Number.NaN),
    ...overrides,
  };
}

const cellsOf = (line: string): string[] =>
  line
    .split('|')
    .slice(1, -1)
    .map((cell) => cell.trim());
/** The cells of a Markdown table's rows, header and separator left out. */
const cells = (markdown: string): string[][] => markdown.split('\n').slice(2).map(cellsOf);

describe('report', () => {
  /** A fan-out run with the figures the ratios divide: CPU/update, p50, p99, KB/conn, updates/s. */
  const measured = (kind: ScenarioResult['kind'], ...[cpu, p50, p99, kb, rate]: number[]) =>
    result({
      kind,
      cpuMicrosPerUpdate: cpu,
      latencyMs: summary(p50!, p99!),
      memoryPerConnectionKB: kb,
      deliveredPerSecond: rate,
    });
  const quotients = (...[cpu, p50, p99, kb, rate]: number[]) => ({
    cpuPerUpdate: expect.closeTo(cpu!, 9) as unknown,
    p50: expect.closeTo(p50!, 9) as unknown,
    p99: expect.closeTo(p99!, 9) as unknown,
    memoryPerConnection: expect.closeTo(kb!, 9) as unknown,
    deliveredPerSecond: expect.closeTo(rate!, 9) as unknown,
  });

  test('ratios divide forkcast by the raw and the tutorial runs; a baseline not run is NaN', () => {
    const names = ['cpuPerUpdate', 'p50', 'p99', 'memoryPerConnection', 'deliveredPerSecond'];
    const nothing = Object.fromEntries(names.map((name) => [name, Number.NaN]));
    const forkcast = measured('forkcast', 6, 3, 10, 12, 900);
    const tutorial = measured('tutorial', 4, 6, 5, 16, 600);
    const raw = measured('raw', 2, 1.5, 4, 3, 1000);
    // ÷ raw in the row's own figures, as the results recorded before the tutorial have them.
    const byRaw = quotients(3, 2, 2.5, 4, 0.9);
    const byTutorial = quotients(1.5, 0.5, 2, 0.75, 1.5);
    for (const [runs, row] of [
      [[forkcast, tutorial, raw], { ...byRaw, tutorial: byTutorial }],
      [[forkcast, raw], { ...byRaw, tutorial: nothing }],
      [[forkcast, tutorial], { ...nothing, tutorial: byTutorial }],
    ] as const)
      expect(ratios([...runs])).toEqual([{ clients: 1000, tickMs: 1000, ...row }]);
  });

  test('ratios pair each forkcast fan-out with its own baselines, in forkcast order', () => {
    const run = (kind: ScenarioResult['kind'], clients: number, tickMs: number, cpu: number) =>
      result({ kind, clients, tickMs, cpuMicrosPerUpdate: cpu });
    const found = ratios([
      // The storm runs sit first, so a missing filter would pair them instead of the fan-out.
      ...(['raw', 'forkcast', 'tutorial'] as const).map((kind) =>
        result({ name: 'buy-storm', kind, clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 100 }),
      ),
      run('raw', 5000, 100, 1),
      run('tutorial', 1000, 100, 16),
      run('raw', 5000, 1000, 2),
      run('tutorial', 5000, 100, 4),
      run('raw', 1000, 100, 4),
      run('tutorial', 5000, 1000, 2),
      run('forkcast', 1000, 100, 8),
      run('forkcast', 5000, 1000, 8),
      run('forkcast', 5000, 100, 8),
      // Measured with one server only: no row.
      run('forkcast', 2000, 1000, 8),
      run('raw', 3000, 1000, 8),
      run('tutorial', 3000, 100, 8),
    ]);
    expect(
      found.map((row) => [row.clients, row.tickMs, row.cpuPerUpdate, row.tutorial.cpuPerUpdate]),
    ).toEqual([
      [1000, 100, 2, 0.5],
      [5000, 1000, 4, 4],
      [5000, 100, 8, 2],
    ]);
    expect(ratios([result({ name: 'buy-storm' })])).toEqual([]);
  });

  test('table is a right-aligned Markdown table with a header and a separator', () => {
    const markdown = table(
      ['server', 'p99 ms'],
      [
        ['raw', '1.25'],
        ['forkcast', '12.50'],
      ],
    );
    expect(markdown.split('\n')).toEqual([
      '|   server | p99 ms |',
      '|---------:|-------:|',
      '|      raw |   1.25 |',
      '| forkcast |  12.50 |',
    ]);
  });

  test('ratioTable writes counts with separators, rates in Hz and ratios with ×, ÷ tutorial then ÷ raw', () => {
    const markdown = ratioTable([
      {
        clients: 10000,
        tickMs: 100,
        cpuPerUpdate: 1.5,
        p50: 2,
        p99: Number.NaN,
        memoryPerConnection: 0.25,
        deliveredPerSecond: 1,
        tutorial: {
          cpuPerUpdate: 0.5,
          p50: 0.75,
          p99: 1.25,
          memoryPerConnection: 3,
          deliveredPerSecond: Number.NaN,
        },
      },
    ]);
    const [header, , row] = markdown.split('\n').map(cellsOf);
    expect(header?.join(' | ')).toBe(
      'clients | rate | ÷ tutorial: CPU/update | p50 | p99 | KB/conn | updates/s | ÷ raw: CPU/update | p50 | p99 | KB/conn | updates/s',
    );
    expect(row?.join(' ')).toBe(
      '10,000 10 Hz 0.50× 0.75× 1.25× 3.00× –× 1.50× 2.00× –× 0.25× 1.00×',
    );
  });
});

test('shares sum to the total, differ by at most one, the larger first', () => {
  expect(shares(100, 7)).toEqual([15, 15, 14, 14, 14, 14, 14]);
  expect(shares(1, 2)).toEqual([1, 0]);
  for (let total = 0; total <= 50; total++) {
    for (let parts = 1; parts <= 8; parts++) {
      const each = shares(total, parts);
      expect(each).toHaveLength(parts);
      expect(each.reduce((sum, share) => sum + share, 0)).toBe(total);
      expect(Math.max(...each) - Math.min(...each)).toBeLessThanOrEqual(1);
      expect([...each].sort((a, b) => b - a)).toEqual(each);
    }
  }
});

describe('settings', () => {
  const INTS = 'positive integers separated by commas';
  const WHOLE = 'whole numbers separated by commas';
  const SERVERS = '"forkcast", "tutorial" or "raw", or several separated by commas';
  const STORM = '"watchers,buyers,buys per second" or "off"';

  test('defaults, with a timestamped results file', () => {
    const options = optionsFromEnv({});
    expect(options).toEqual({
      clients: [1000, 5000, 10000],
      tickMs: [1000, 100],
      seconds: 20,
      warmupSeconds: 3,
      workers: 2,
      servers: ['forkcast', 'tutorial', 'raw'],
      cluster: [],
      storm: { watchers: 5000, buyers: 100, buysPerSecond: 2000 },
      startupRuns: 5,
      pin: true,
      out: expect.any(String) as unknown,
    });
    expect(path.isAbsolute(options.out)).toBe(true);
    // Without ':' so that the file name is valid everywhere.
    expect(path.basename(options.out)).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.jsonl$/);
    expect(path.basename(path.dirname(options.out))).toBe('results');
    // An empty or blank variable counts as unset.
    expect(optionsFromEnv({ BENCH_CLIENTS: '', BENCH_STORM: ' ', BENCH_CLUSTER: '' })).toEqual({
      ...options,
      out: expect.any(String),
    });
  });

  test('reads every variable; off and 0 skip a part', () => {
    const env = {
      BENCH_CLIENTS: '10, 20,30',
      TICK_MS: '250',
      BENCH_SECONDS: '5',
      BENCH_WARMUP: '1',
      BENCH_WORKERS: '4',
      BENCH_SERVERS: ' raw, tutorial',
      BENCH_CLUSTER: '1, 2,3',
      BENCH_STORM: '300,10,50',
      BENCH_STARTUP: '2',
      BENCH_PIN: '0',
      BENCH_OUT: 'out/run.jsonl',
    };
    const options = {
      clients: [10, 20, 30],
      tickMs: [250],
      seconds: 5,
      warmupSeconds: 1,
      workers: 4,
      servers: ['raw', 'tutorial'],
      cluster: [1, 2, 3],
      storm: { watchers: 300, buyers: 10, buysPerSecond: 50 },
      startupRuns: 2,
      pin: false,
      out: path.resolve('out/run.jsonl'),
    };
    expect(optionsFromEnv(env)).toEqual(options);
    const off = { BENCH_CLUSTER: 'off', BENCH_STORM: 'off', BENCH_STARTUP: '0', BENCH_WARMUP: '0' };
    expect(optionsFromEnv({ ...env, ...off })).toEqual({
      ...options,
      cluster: [],
      storm: null,
      startupRuns: 0,
      warmupSeconds: 0,
    });
  });

  test.each<[NodeJS.ProcessEnv, string]>([
    [{ BENCH_WARMUP: '-1' }, WHOLE],
    [{ BENCH_WARMUP: '1.5' }, WHOLE],
    [{ BENCH_STARTUP: 'five' }, WHOLE],
    [{ BENCH_STARTUP: '1,2' }, 'one number'],
    [{ BENCH_SECONDS: '20,30' }, 'one number'],
    [{ BENCH_CLIENTS: '10,abc' }, INTS],
    [{ BENCH_CLIENTS: '-1' }, INTS],
    [{ BENCH_CLIENTS: '0' }, INTS],
    [{ TICK_MS: '100.5' }, INTS],
    [{ TICK_MS: '1000,,100' }, INTS],
    [{ BENCH_WORKERS: '0' }, INTS],
    [{ BENCH_STORM: '5000,x,2000' }, INTS],
    [{ BENCH_STORM: '5000,100' }, STORM],
    [{ BENCH_STORM: '1,2,3,4' }, STORM],
    [{ BENCH_SERVERS: 'nginx' }, SERVERS],
    [{ BENCH_SERVERS: 'forkcast,Raw' }, SERVERS],
    [{ BENCH_SERVERS: 'forkcast,,tutorial' }, SERVERS],
    [{ BENCH_PIN: 'yes' }, '0 or 1'],
    [{ BENCH_CLUSTER: '1,0' }, INTS],
    [{ BENCH_CLUSTER: 'on' }, INTS],
    [{ BENCH_CLUSTER: '1-3' }, INTS],
  ])('refuses %j, naming the variable', (env, expected) => {
    const [[name, value]] = Object.entries(env) as [[string, string]];
    expect(() => optionsFromEnv(env)).toThrow(`${name} must be ${expected}, got "${value}"`);
  });

  test('cluster runs without a redis-server are refused before anything starts', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-bench-unit-'));
    const redis = process.env['REDIS_SERVER'];
    process.env['REDIS_SERVER'] = path.join(dir, 'no-such-redis-server');
    try {
      const options = optionsFromEnv({ BENCH_CLUSTER: '2', BENCH_OUT: path.join(dir, 'r.jsonl') });
      const lines: string[] = [];
      await expect(runBench(options, (line) => lines.push(line))).rejects.toThrow(
        /^BENCH_CLUSTER needs redis-server/,
      );
      // Not even the single-server runs started.
      expect(lines).toEqual([]);
      expect(existsSync(options.out)).toBe(false);
    } finally {
      if (redis === undefined) delete process.env['REDIS_SERVER'];
      else process.env['REDIS_SERVER'] = redis;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('stormState leaves room for 20 s of 2,000 buys/s on every stock within the doubles', () => {
  const state = stormState(1_764_230_000_000);
  expect(state.stocks.map((stock) => stock.name)).toEqual(['Apple', 'Microsoft', 'Facebook']);
  // 40,000 buys round robin over three stocks: at most 13,334 each. In powers of ten, as
  // 1.1^13500 alone is beyond a double.
  const finalExponent = (price: number): number => Math.log10(price) + 13_500 * Math.log10(1.1);
  for (const { price } of state.stocks) {
    expect(price).toBeGreaterThan(0);
    expect(finalExponent(price)).toBeLessThan(Math.log10(Number.MAX_VALUE));
  }
  // Whereas the seed prices would overflow long before.
  expect(finalExponent(14.5)).toBeGreaterThan(Math.log10(Number.MAX_VALUE));
});

test.each<[string, number | null]>([
  [
    '{"level":30,"time":1764230000123,"pid":4242,"url":"http://127.0.0.1:4567","msg":"forkcast listening"}',
    4567,
  ],
  ['{"port":1234}', 1234],
  ['{"msg":"raw baseline listening","port":1234}', 1234],
  ['Debugger listening on ws://127.0.0.1:9229/abc', null],
  ['', null],
  ['null', null],
  ['42', null],
  ['"http://127.0.0.1:4567"', null],
  ['{"level":30,"msg":"ticker ready"}', null],
  ['{"port":"1234"}', null],
  // Later log lines carry request paths in `url`; they must not throw.
  ['{"level":50,"url":"/api/x","msg":"request failed"}', null],
  ['{"url":"http://[::1"}', null],
])('portIn(%j) is %j: the port of a server’s listening line', (line, port) => {
  expect(portIn(line)).toBe(port);
});

test.each<[number[], number]>([
  [[5], 5],
  [[3, 1, 2], 2],
  [[40, 10, 30, 20], 25],
  [[2, 1], 1.5],
  [[100, 9, 10], 10],
])('median(%j) is %d, leaving its input unsorted', (values, expected) => {
  const before = [...values];
  expect(median(values)).toBe(expected);
  expect(values).toEqual(before);
});

describe('spreading the clients over workers and nodes', () => {
  test('nodeOf goes round robin over the nodes', () => {
    expect(Array.from({ length: 7 }, (_, i) => nodeOf(i, 3))).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(Array.from({ length: 3 }, (_, i) => nodeOf(i, 1))).toEqual([0, 0, 0]);
  });

  test('workerShares numbers the clients through the run; a storm’s buyers get a worker of their own', () => {
    const share = (watchers: number, niceness: number, firstClient: number) => ({
      watchers,
      buyers: 0,
      buysPerSecond: 0,
      niceness,
      firstClient,
    });
    expect(workerShares({ watchers: 10, buyers: 0, buysPerSecond: 0 }, 3)).toEqual([
      share(4, 0, 0),
      share(3, 0, 4),
      share(3, 0, 7),
    ]);
    // After the watchers, which run at a lower priority.
    expect(workerShares({ watchers: 5, buyers: 2, buysPerSecond: 40 }, 2)).toEqual([
      share(3, 10, 0),
      share(2, 10, 3),
      { watchers: 0, buyers: 2, buysPerSecond: 40, niceness: 0, firstClient: 5 },
    ]);
  });

  test('every node gets an even share of the whole run, whatever the workers’ shares', () => {
    for (const total of [0, 1, 2, 7, 30, 1001]) {
      for (let workers = 1; workers <= 4; workers++) {
        for (let nodes = 1; nodes <= 3; nodes++) {
          const perNode = Array<number>(nodes).fill(0);
          const run = { watchers: total, buyers: 0, buysPerSecond: 0 };
          for (const share of workerShares(run, workers))
            for (let client = 0; client < share.watchers; client++)
              perNode[nodeOf(share.firstClient + client, nodes)]! += 1;
          // Numbering each worker's clients from 0 would put 2 clients on 2 workers on node 0.
          expect({ total, workers, nodes, perNode }).toEqual({
            total,
            workers,
            nodes,
            perNode: shares(total, nodes),
          });
        }
      }
    }
  });
});

describe('cluster', () => {
  const health = (
    node: string,
    role: 'leader' | 'follower',
    leader: string | null,
    more: { pid?: number | null; status?: string } = {},
  ): unknown => ({
    ok: (more.status ?? 'ok') === 'ok',
    status: more.status ?? 'ok',
    running: false,
    seq: 0,
    uptime: 1.5,
    pid: more.pid ?? null,
    node,
    role,
    redis: 'up',
    leader,
  });
  const leaderA = health('a', 'leader', 'a', { pid: 4242 });
  const followerOfA = (node: string) => health(node, 'follower', 'a');

  test.each<[string, unknown[], number | null]>([
    ['a lone leader with its ticker child', [leaderA], 0],
    ['a leader and a follower naming it', [leaderA, followerOfA('b')], 0],
    ['a leader after two followers', [followerOfA('b'), followerOfA('c'), leaderA], 2],
    ['a leader whose ticker child is not up yet', [health('a', 'leader', 'a')], null],
    [
      'a follower that does not know the leader yet',
      [leaderA, health('b', 'follower', null, { status: 'degraded' })],
      null,
    ],
    ['a follower naming an old leader', [leaderA, health('b', 'follower', 'z')], null],
    ['two leaders', [leaderA, health('b', 'leader', 'b', { pid: 4343 }), followerOfA('c')], null],
    ['followers only', [followerOfA('b'), followerOfA('c')], null],
    ['a node that did not answer', [leaderA, null], null],
    ['a node that answered something else', [leaderA, { error: 'Not found' }], null],
    [
      'a leader whose Redis is down',
      [health('a', 'leader', 'a', { pid: 1, status: 'degraded' })],
      null,
    ],
    ['no nodes', [], null],
  ])('leaderOf %s: %s', (_, healths, expected) => {
    expect(leaderOf(healths)).toBe(expected);
  });

  test('infoField reads one field of Redis’s INFO text', () => {
    const info = '# Server\r\nredis_version:7.0.15\r\nprocess_id:5271\r\nrun_id:abc:def\r\n';
    expect(infoField(info, 'process_id')).toBe('5271');
    expect(infoField(info, 'run_id')).toBe('abc:def');
    expect(infoField(info, 'process')).toBeNull();
    expect(infoField('', 'process_id')).toBeNull();
  });

  describe('summarizeCluster', () => {
    const scenario: ClusterScenario = {
      name: 'fan-out',
      kind: 'cluster',
      nodes: 2,
      watchers: 4,
      tickMs: 1000,
    };
    /** `delivered` updates to one client, all at `ms` but for a late one when `late`. */
    const nodeReport = (delivered: number, ms: number, late = false): NodeReport => {
      const latencies = Array.from({ length: delivered }, (_, i) => (late && i === 0 ? 1500 : ms));
      const latency: Histogram = new Map();
      for (const ms of latencies) record(latency, ms);
      return {
        connected: 1,
        delivered,
        late: latencies.filter((ms) => ms > 1000).length,
        latency: [...latency],
      };
    };
    const workerReport = (nodes: NodeReport[], seqs: number[]): WorkerReport => {
      const latency: Histogram = new Map();
      for (const node of nodes) merge(latency, node.latency);
      const sum = (of: (node: NodeReport) => number) => nodes.reduce((n, node) => n + of(node), 0);
      return {
        connected: sum((node) => node.connected),
        lost: 0,
        delivered: sum((node) => node.delivered),
        late: sum((node) => node.late),
        seqs,
        outOfOrder: 0,
        latency: [...latency],
        buysSent: 0,
        acksOk: 0,
        acksRejected: 0,
        ackLatency: [],
        nodes,
      };
    };
    const tenSeqs = Array.from({ length: 10 }, (_, i) => 100 + i);
    // Two workers with one client on each node; the second worker's client on node 1 missed
    // two updates, one of node 0's clients got one late.
    const measured: Measured = {
      reports: [
        workerReport([nodeReport(10, 2), nodeReport(10, 6)], tenSeqs),
        workerReport([nodeReport(10, 4, true), nodeReport(8, 8)], tenSeqs.slice(2)),
      ],
      cpuMicros: [2_000_000, 1_000_000, 500_000],
      loadCpuMicros: 800_000,
      rssGrowth: [20 * 1024, 40 * 1024],
    };
    const run = { leader: 0, leaderAfter: 0, serverStartMs: 600, leaderElectedMs: 900 };

    test('counts the whole cluster like one server, charging every node and Redis', () => {
      const figures = summarizeCluster(scenario, { seconds: 10 }, measured, run);
      expect(figures).toMatchObject({
        ...scenario,
        ...run,
        buyers: 0,
        buysPerSecond: 0,
        clients: 4,
        seconds: 10,
        broadcasts: 10,
        delivered: 38,
        deliveredPerSecond: 3.8,
        missed: 2,
        late: 1,
        latencyMs: { count: 38, max: expect.closeTo(1500, 9) },
        serverCpuPercent: expect.closeTo(35, 9),
        cpuMicrosPerUpdate: expect.closeTo(3_500_000 / 38, 9),
        redisCpuPercent: expect.closeTo(5, 9),
        redisCpuMicrosPerUpdate: expect.closeTo(500_000 / 38, 9),
        loadCpuPercent: expect.closeTo(8, 9),
        // Every node's growth over all the clients.
        memoryPerConnectionKB: expect.closeTo(60 / 4, 9),
      });
      // And by node: node, role, clients, delivered, per second, missed, late, p50, CPU %, KB/conn.
      expect(
        figures.perNode.map((node) => [
          ...[node.node, node.role, node.clients, node.delivered, node.deliveredPerSecond],
          ...[
            node.missed,
            node.late,
            node.latencyMs.p50,
            node.cpuPercent,
            node.memoryPerConnectionKB,
          ],
        ]),
      ).toEqual([
        [0, 'leader', 2, 20, 2, 0, 1, expect.closeTo(2, 9), 20, 10],
        [1, 'follower', 2, 18, 1.8, 2, 0, expect.closeTo(6, 9), 10, 20],
      ]);
    });

    test('refuses CPU figures that are not one per node and one for Redis', () => {
      expect(() =>
        summarizeCluster(scenario, { seconds: 10 }, { ...measured, cpuMicros: [1, 2] }, run),
      ).toThrow('expected CPU of 2 nodes and Redis, got 2 figures');
    });
  });

  /** A finished cluster run; only what the report reads needs to vary. */
  function clusterResult(overrides: Partial<ClusterResult> = {}): ClusterResult {
    const { kind: _kind, name: _name, ...figures } = result({ clients: overrides.clients ?? 1000 });
    return {
      ...figures,
      name: 'fan-out',
      kind: 'cluster',
      nodes: 2,
      buyers: 0,
      buysPerSecond: 0,
      redisCpuPercent: 1.5,
      redisCpuMicrosPerUpdate: 0.75,
      leaderElectedMs: 900,
      leader: 0,
      leaderAfter: 0,
      perNode: [],
      ...overrides,
    };
  }

  test('clusterRatios divides each cluster by the raw run with the same clients and tick', () => {
    const found = clusterRatios(
      [
        result({ kind: 'forkcast', cpuMicrosPerUpdate: 100 }),
        result({ kind: 'raw', clients: 5000, cpuMicrosPerUpdate: 100 }),
        result({ kind: 'raw', cpuMicrosPerUpdate: 2, latencyMs: summary(2, 8) }),
      ],
      [
        clusterResult({ nodes: 1, cpuMicrosPerUpdate: 6, latencyMs: summary(3, 10) }),
        clusterResult({ nodes: 3, cpuMicrosPerUpdate: 9, latencyMs: summary(4, 16) }),
        clusterResult({ nodes: 2, tickMs: 100 }),
      ],
    );
    const base = { kind: 'cluster', clients: 1000, tickMs: 1000 };
    expect(found).toEqual([
      expect.objectContaining({ ...base, nodes: 1, cpuPerUpdate: 3, p50: 1.5, p99: 1.25 }),
      expect.objectContaining({ ...base, nodes: 3, cpuPerUpdate: 4.5, p50: 2, p99: 2 }),
    ]);
  });

  test('clusterTable sets each cluster after the single servers of its clients and tick', () => {
    const rows = cells(
      clusterTable(
        [
          result({ kind: 'raw', clients: 5000 }),
          result({ kind: 'raw' }),
          result({ kind: 'forkcast' }),
          result({ name: 'buy-storm', kind: 'forkcast' }),
        ],
        [
          clusterResult({ nodes: 1 }),
          clusterResult({ nodes: 2, clients: 5000, redisCpuPercent: 2.25 }),
          clusterResult({ nodes: 2 }),
        ],
      ),
    );
    // server, nodes, clients, then Redis CPU % (12th column) and Redis µs/update (15th).
    expect(rows.map((row) => [row[0], row[1], row[2], row[12], row[15]].join(' '))).toEqual([
      'raw 1 1,000 – –',
      'forkcast 1 1,000 – –',
      'cluster 1 1,000 1.5 0.75',
      'cluster 2 1,000 1.5 0.75',
      'raw 1 5,000 – –',
      'cluster 2 5,000 2.3 0.75',
    ]);
  });

  test('clusterRatioTable and clusterNodeTable write one row per cluster and per node', () => {
    const ratio = { kind: 'cluster' as const, nodes: 3, clients: 5000, tickMs: 1000 };
    const [ratioRow] = cells(
      clusterRatioTable([
        {
          ...ratio,
          cpuPerUpdate: 1.5,
          p50: 2,
          p99: 3,
          memoryPerConnection: 1,
          deliveredPerSecond: 1,
        },
      ]),
    );
    expect(ratioRow?.join(' ')).toBe('3 5,000 1 Hz 1.50× 2.00× 3.00× 1.00× 1.00×');

    const node = {
      clients: 500,
      delivered: 10_000,
      deliveredPerSecond: 500,
      late: 0,
      latencyMs: summary(5, 20),
      cpuPercent: 12.5,
      memoryPerConnectionKB: 18,
    };
    const perNode = [
      { ...node, node: 0, role: 'follower' as const, missed: 3 },
      { ...node, node: 1, role: 'leader' as const, missed: 0 },
    ];
    const rows = cells(clusterNodeTable([clusterResult({ leader: 1, perNode })]));
    expect(rows.map((row) => [row[3], row[4], row[5], row[7], row[9], row[12]].join(' '))).toEqual([
      '0 follower 500 3 5.00 12.5',
      '1 leader 500 0 5.00 12.5',
    ]);
  });
});
