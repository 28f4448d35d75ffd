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
import { optionsFromEnv } from '../../bench/run';
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

describe('frames', () => {
  test('socketIoUrl dials the WebSocket transport directly, under the server path', () => {
    const url = socketIoUrl(4567);
    expect(url).toBe('ws://127.0.0.1:4567/socket.io/?EIO=4&transport=websocket');
    expect(new URL(url).pathname.startsWith(SOCKET_PATH)).toBe(true);
    expect(socketIoUrl(80, '/ws/')).toBe('ws://127.0.0.1:80/ws/?EIO=4&transport=websocket');
  });

  test('isPing is true only for the one-byte Engine.IO ping', () => {
    expect(isPing(Buffer.from('2'))).toBe(true);
    expect(isPing(Buffer.from('3'))).toBe(false);
    expect(isPing(Buffer.from('2probe'))).toBe(false);
    expect(isPing(Buffer.from('42'))).toBe(false);
    expect(isPing(Buffer.alloc(0))).toBe(false);
  });

  describe('isSocketIoUpdate', () => {
    test('is true for an update event', () => {
      expect(isSocketIoUpdate(event('update', UPDATE))).toBe(true);
    });

    test.each<[string, Buffer]>([
      ['a status event', event('status', { message: 'started', running: true })],
      ['a history event', event('history', { updates: [UPDATE] })],
      ['an acknowledgement', ack(1, { ok: true, running: true })],
      ['a ping', Buffer.from('2')],
      ['the namespace connect', Buffer.from('40{"sid":"abc"}')],
      ['the Engine.IO open', Buffer.from('0{"sid":"abc","pingInterval":25000}')],
      ['the bare prefix with nothing after it', Buffer.from('42["update",')],
      ['a bare JSON update', Buffer.from(JSON.stringify(UPDATE))],
    ])('is false for %s', (_label, frame) => {
      expect(isSocketIoUpdate(frame)).toBe(false);
    });
  });

  describe('seqAndTs', () => {
    test('reads seq and ts from a Socket.IO update frame', () => {
      expect(seqAndTs(event('update', UPDATE))).toEqual({ seq: 123, ts: 1764230000123 });
    });

    test('reads seq and ts from a bare JSON update (the raw baseline)', () => {
      expect(seqAndTs(Buffer.from(JSON.stringify(UPDATE)))).toEqual({
        seq: 123,
        ts: 1764230000123,
      });
    });

    test('is not confused by decimal prices or by another key order', () => {
      const update = { ts: 1764230000999, seq: 7, running: false, stocks: UPDATE.stocks };
      expect(seqAndTs(event('update', update))).toEqual({ seq: 7, ts: 1764230000999 });
    });

    test('gives NaN for a missing key rather than a number that could pass', () => {
      const { seq, ts } = seqAndTs(Buffer.from(JSON.stringify({ stocks: UPDATE.stocks })));
      expect(seq).toBeNaN();
      expect(ts).toBeNaN();
    });
  });

  test('buyFrame asks for an acknowledgement with the given id', () => {
    expect(buyFrame(7, 'Apple')).toBe('427["buy","Apple"]');
    expect(buyFrame(0, 'Microsoft')).toBe('420["buy","Microsoft"]');
    expect(buyFrame(12345, 'Face"book')).toBe('4212345["buy","Face\\"book"]');
  });

  describe('parseAck', () => {
    test('reads the id and ok of a successful acknowledgement', () => {
      const frame = ack(12, { ok: true, stock: { name: 'Apple', price: 15.95 } });
      expect(parseAck(frame)).toEqual({ id: 12, ok: true });
    });

    test('reads the id and ok of a refusal', () => {
      expect(parseAck(ack(7, { ok: false, error: 'too many operations' }))).toEqual({
        id: 7,
        ok: false,
      });
    });

    test('a refusal whose message quotes "ok":true stays a refusal', () => {
      expect(parseAck(ack(3, { ok: false, error: 'expected "ok":true' }))).toEqual({
        id: 3,
        ok: false,
      });
    });

    test.each<[string, Buffer]>([
      ['an update event', event('update', UPDATE)],
      ['a status event', event('status', { message: 'stopped', running: false })],
      ['a ping', Buffer.from('2')],
      ['the namespace connect', Buffer.from('40{"sid":"abc"}')],
      ['a truncated ack', Buffer.from('431')],
      ['an ack without an id', Buffer.from('43[{"ok":true}]')],
      ['an ack with a non-numeric id', Buffer.from('43x1[{"ok":true}]')],
    ])('is null for %s', (_label, frame) => {
      expect(parseAck(frame)).toBeNull();
    });
  });
});

describe('stats', () => {
  const histogramOf = (values: readonly number[]): Histogram => {
    const histogram: Histogram = new Map();
    for (const value of values) record(histogram, value);
    return histogram;
  };
  const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

  test('buckets are 0.01 ms wide', () => {
    expect(BUCKET_MS).toBe(0.01);
    expect([...histogramOf([1.234, 1.236, 1.2341]).entries()]).toEqual([
      [123, 2],
      [124, 1],
    ]);
  });

  test('a negative latency is recorded as 0', () => {
    const histogram = histogramOf([-0.5, -1000, 0.004]);
    expect([...histogram.entries()]).toEqual([[0, 3]]);
    expect(summarize(histogram).max).toBe(0);
  });

  test('nearest-rank percentiles of 1..100 ms', () => {
    const summary = summarize(histogramOf(oneToHundred));
    expect(summary.count).toBe(100);
    expect(summary.p50).toBeCloseTo(50, 9);
    expect(summary.p90).toBeCloseTo(90, 9);
    expect(summary.p99).toBeCloseTo(99, 9);
    expect(summary.max).toBeCloseTo(100, 9);
  });

  test('percentiles do not depend on the order samples arrived in', () => {
    expect(summarize(histogramOf([...oneToHundred].reverse()))).toEqual(
      summarize(histogramOf(oneToHundred)),
    );
  });

  test('p99 is the smallest value with at least 99 % of samples at or below it', () => {
    const onePercentSlow = [...Array<number>(99).fill(1), 1000];
    expect(summarize(histogramOf(onePercentSlow)).p99).toBeCloseTo(1, 9);
    const twoPercentSlow = [...Array<number>(98).fill(1), 1000, 1000];
    expect(summarize(histogramOf(twoPercentSlow)).p99).toBeCloseTo(1000, 9);
  });

  test('an empty histogram summarises to NaN, never 0', () => {
    const summary: Summary = summarize(new Map());
    expect(summary.count).toBe(0);
    for (const figure of [summary.p50, summary.p90, summary.p99, summary.max])
      expect(figure).toBeNaN();
  });

  test('merging the workers’ entries gives the same figures as one histogram', () => {
    const odd = histogramOf(oneToHundred.filter((value) => value % 2 === 1));
    const even = histogramOf(oneToHundred.filter((value) => value % 2 === 0));
    // Entries travel over IPC as JSON.
    const entries = JSON.parse(JSON.stringify([...even.entries()])) as [number, number][];
    const merged = merge(odd, entries);
    expect(merged).toBe(odd);
    expect(countOf(merged)).toBe(100);
    expect(summarize(merged)).toEqual(summarize(histogramOf(oneToHundred)));
  });

  test('merge adds counts of a bucket present on both sides', () => {
    const into = histogramOf([2, 2]);
    merge(into, [
      [200, 3],
      [300, 1],
    ]);
    expect([...into.entries()]).toEqual([
      [200, 5],
      [300, 1],
    ]);
    expect(countOf(into)).toBe(6);
    expect(countOf(new Map())).toBe(0);
  });
});

describe('proc', () => {
  // Fields 14 to 17 are utime, stime, cutime, cstime; distinct values catch an off-by-one.
  const fields = 'S 1 1 1 0 -1 4194560 2000 0 12 0 1234 567 89 10 20 0 3 0 21547 1051 412';

  test('parseStat counts fields from the last ")" of the command name', () => {
    expect(parseStat(`4242 (node) ${fields}\n`)).toEqual({ utime: 1234, stime: 567 });
    expect(parseStat(`4242 (my (odd) server) 1 2) ${fields}\n`)).toEqual({
      utime: 1234,
      stime: 567,
    });
  });

  test('parseStat rejects a line that is too short', () => {
    expect(() => parseStat('4242 (node) S 1 1')).toThrow(/^unexpected \/proc stat line: 4242/);
  });

  test('parseRss reads VmRSS in bytes', () => {
    const status = [
      'Name:\tnode',
      'VmPeak:\t 1234567 kB',
      'VmHWM:\t   99999 kB',
      'VmRSS:\t   19680 kB',
      'RssAnon:\t   11111 kB',
      '',
    ].join('\n');
    expect(parseRss(status)).toBe(19680 * 1024);
  });

  test('parseRss fails without a VmRSS line', () => {
    expect(() => parseRss('Name:\tnode\nVmHWM:\t 99999 kB\n')).toThrow('no VmRSS line');
  });

  test('treeCpuMicros of this process agrees with Node’s own CPU usage', () => {
    const before = process.cpuUsage();
    const measured = treeCpuMicros(process.pid);
    const after = process.cpuUsage();
    expect(Number.isFinite(measured)).toBe(true);
    expect(measured).toBeGreaterThan(0);
    // Clock ticks are 10 ms, and the reading falls between the two cpuUsage() calls.
    expect(measured).toBeGreaterThanOrEqual(0.8 * (before.user + before.system) - 20_000);
    expect(measured).toBeLessThanOrEqual(1.2 * (after.user + after.system) + 20_000);
  });

  test('rssBytes of this process agrees with Node’s own RSS', () => {
    const measured = rssBytes(process.pid);
    expect(Number.isFinite(measured)).toBe(true);
    expect(measured).toBeGreaterThan(0);
    const rss = process.memoryUsage().rss;
    expect(measured).toBeGreaterThan(0.8 * rss);
    expect(measured).toBeLessThan(1.25 * rss);
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

describe('report', () => {
  describe('ratios', () => {
    test('divides forkcast by the raw and the tutorial runs with the same clients and tick', () => {
      const found = ratios([
        result({
          kind: 'forkcast',
          cpuMicrosPerUpdate: 6,
          latencyMs: summary(3, 10),
          memoryPerConnectionKB: 12,
          deliveredPerSecond: 900,
        }),
        result({
          kind: 'tutorial',
          cpuMicrosPerUpdate: 4,
          latencyMs: summary(6, 5),
          memoryPerConnectionKB: 16,
          deliveredPerSecond: 600,
        }),
        result({
          kind: 'raw',
          cpuMicrosPerUpdate: 2,
          latencyMs: summary(1.5, 4),
          memoryPerConnectionKB: 3,
          deliveredPerSecond: 1000,
        }),
      ]);
      expect(found).toHaveLength(1);
      const [ratio] = found;
      expect(ratio?.clients).toBe(1000);
      expect(ratio?.tickMs).toBe(1000);
      // ÷ raw in the row's own figures, as the results recorded before the tutorial have them.
      expect(ratio?.cpuPerUpdate).toBeCloseTo(3, 9);
      expect(ratio?.p50).toBeCloseTo(2, 9);
      expect(ratio?.p99).toBeCloseTo(2.5, 9);
      expect(ratio?.memoryPerConnection).toBeCloseTo(4, 9);
      expect(ratio?.deliveredPerSecond).toBeCloseTo(0.9, 9);
      const tutorial = ratio?.tutorial;
      expect(tutorial?.cpuPerUpdate).toBeCloseTo(1.5, 9);
      expect(tutorial?.p50).toBeCloseTo(0.5, 9);
      expect(tutorial?.p99).toBeCloseTo(2, 9);
      expect(tutorial?.memoryPerConnection).toBeCloseTo(0.75, 9);
      expect(tutorial?.deliveredPerSecond).toBeCloseTo(1.5, 9);
    });

    test('leaves a baseline that was not measured as NaN, and keeps the row for the other', () => {
      const nothing = {
        cpuPerUpdate: Number.NaN,
        p50: Number.NaN,
        p99: Number.NaN,
        memoryPerConnection: Number.NaN,
        deliveredPerSecond: Number.NaN,
      };
      const forkcast = result({ kind: 'forkcast', cpuMicrosPerUpdate: 6 });
      const [withoutTutorial] = ratios([forkcast, result({ kind: 'raw', cpuMicrosPerUpdate: 2 })]);
      expect(withoutTutorial?.cpuPerUpdate).toBeCloseTo(3, 9);
      expect(withoutTutorial?.tutorial).toEqual(nothing);
      const [withoutRaw] = ratios([forkcast, result({ kind: 'tutorial', cpuMicrosPerUpdate: 4 })]);
      expect(withoutRaw).toEqual({
        clients: 1000,
        tickMs: 1000,
        ...nothing,
        tutorial: expect.objectContaining({ cpuPerUpdate: 1.5 }),
      });
    });

    test('pairs each forkcast run with its own baseline runs, in forkcast order', () => {
      const found = ratios([
        result({ kind: 'raw', clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 1 }),
        result({ kind: 'tutorial', clients: 1000, tickMs: 100, cpuMicrosPerUpdate: 16 }),
        result({ kind: 'raw', clients: 5000, tickMs: 1000, cpuMicrosPerUpdate: 2 }),
        result({ kind: 'tutorial', clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 4 }),
        result({ kind: 'raw', clients: 1000, tickMs: 100, cpuMicrosPerUpdate: 4 }),
        result({ kind: 'tutorial', clients: 5000, tickMs: 1000, cpuMicrosPerUpdate: 2 }),
        result({ kind: 'forkcast', clients: 1000, tickMs: 100, cpuMicrosPerUpdate: 8 }),
        result({ kind: 'forkcast', clients: 5000, tickMs: 1000, cpuMicrosPerUpdate: 8 }),
        result({ kind: 'forkcast', clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 8 }),
      ]);
      expect(
        found.map(({ clients, tickMs, cpuPerUpdate, tutorial }) => [
          clients,
          tickMs,
          cpuPerUpdate,
          tutorial.cpuPerUpdate,
        ]),
      ).toEqual([
        [1000, 100, 2, 0.5],
        [5000, 1000, 4, 4],
        [5000, 100, 8, 2],
      ]);
    });

    test('ignores runs measured with one server only', () => {
      expect(
        ratios([
          result({ kind: 'forkcast', clients: 1000, tickMs: 1000 }),
          result({ kind: 'raw', clients: 5000, tickMs: 1000 }),
          result({ kind: 'tutorial', clients: 1000, tickMs: 100 }),
          result({ kind: 'raw', clients: 1000, tickMs: 100 }),
        ]),
      ).toEqual([]);
    });

    test('ignores buy-storm runs on either side', () => {
      // The storm runs sit first, so a missing filter would pair them instead of the fan-out.
      const found = ratios([
        result({ name: 'buy-storm', kind: 'raw', cpuMicrosPerUpdate: 100 }),
        result({ name: 'buy-storm', kind: 'forkcast', cpuMicrosPerUpdate: 100 }),
        result({ name: 'buy-storm', kind: 'tutorial', cpuMicrosPerUpdate: 100 }),
        result({ kind: 'raw', cpuMicrosPerUpdate: 4 }),
        result({ kind: 'tutorial', cpuMicrosPerUpdate: 10 }),
        result({ kind: 'forkcast', cpuMicrosPerUpdate: 5 }),
      ]);
      expect(found).toHaveLength(1);
      expect(found[0]?.cpuPerUpdate).toBeCloseTo(1.25, 9);
      expect(found[0]?.tutorial.cpuPerUpdate).toBeCloseTo(0.5, 9);
      expect(ratios([result({ name: 'buy-storm', kind: 'forkcast' })])).toEqual([]);
    });
  });

  test('table is a right-aligned Markdown table with a header and a separator', () => {
    const text = table(
      ['server', 'p99 ms'],
      [
        ['raw', '1.25'],
        ['forkcast', '12.50'],
      ],
    );
    expect(text.split('\n')).toEqual([
      '|   server | p99 ms |',
      '|---------:|-------:|',
      '|      raw |   1.25 |',
      '| forkcast |  12.50 |',
    ]);
  });

  test('ratioTable writes counts with separators, rates in Hz and ratios with ×, ÷ tutorial then ÷ raw', () => {
    const [header, , row] = ratioTable([
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
    ]).split('\n');
    const cells = (line: string | undefined): string[] | undefined =>
      line
        ?.split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
    expect(cells(header)).toEqual([
      'clients',
      'rate',
      '÷ tutorial: CPU/update',
      'p50',
      'p99',
      'KB/conn',
      'updates/s',
      '÷ raw: CPU/update',
      'p50',
      'p99',
      'KB/conn',
      'updates/s',
    ]);
    expect(cells(row)).toEqual([
      '10,000',
      '10 Hz',
      '0.50×',
      '0.75×',
      '1.25×',
      '3.00×',
      '–×',
      '1.50×',
      '2.00×',
      '–×',
      '0.25×',
      '1.00×',
    ]);
  });
});

describe('shares', () => {
  test.each<[number, number, number[]]>([
    [10, 3, [4, 3, 3]],
    [1, 2, [1, 0]],
    [0, 2, [0, 0]],
    [6, 2, [3, 3]],
    [10000, 1, [10000]],
    [100, 7, [15, 15, 14, 14, 14, 14, 14]],
  ])('shares(%i, %i) is %j', (total, parts, expected) => {
    expect(shares(total, parts)).toEqual(expected);
  });

  test('shares always sum to the total and differ by at most one', () => {
    for (let total = 0; total <= 50; total++) {
      for (let parts = 1; parts <= 8; parts++) {
        const each = shares(total, parts);
        expect(each).toHaveLength(parts);
        expect(each.reduce((sum, share) => sum + share, 0)).toBe(total);
        expect(Math.max(...each) - Math.min(...each)).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe('optionsFromEnv', () => {
  test('defaults', () => {
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
    // A timestamped name without ':' so that the file name is valid everywhere.
    expect(path.basename(options.out)).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z\.jsonl$/);
    expect(path.basename(path.dirname(options.out))).toBe('results');
  });

  test('reads every variable', () => {
    expect(
      optionsFromEnv({
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
      }),
    ).toEqual({
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
    });
  });

  test('BENCH_CLUSTER=off, like leaving it unset, runs no cluster', () => {
    expect(optionsFromEnv({ BENCH_CLUSTER: 'off' }).cluster).toEqual([]);
    expect(optionsFromEnv({ BENCH_CLUSTER: '' }).cluster).toEqual([]);
  });

  test('BENCH_STORM=off skips the storm', () => {
    expect(optionsFromEnv({ BENCH_STORM: 'off' }).storm).toBeNull();
  });

  test('BENCH_STARTUP=0 skips the start-up runs', () => {
    expect(optionsFromEnv({ BENCH_STARTUP: '0' }).startupRuns).toBe(0);
  });

  test('BENCH_WARMUP=0 measures right after connecting', () => {
    expect(optionsFromEnv({ BENCH_WARMUP: '0' }).warmupSeconds).toBe(0);
  });

  test.each<[string, NodeJS.ProcessEnv, string]>([
    ['a negative warm-up', { BENCH_WARMUP: '-1' }, 'whole numbers separated by commas'],
    ['a fractional warm-up', { BENCH_WARMUP: '1.5' }, 'whole numbers separated by commas'],
    [
      'a word for the start-up runs',
      { BENCH_STARTUP: 'five' },
      'whole numbers separated by commas',
    ],
    ['a list of start-up runs', { BENCH_STARTUP: '1,2' }, 'one number'],
    ['a list of window lengths', { BENCH_SECONDS: '20,30' }, 'one number'],
    ['a word in a list', { BENCH_CLIENTS: '10,abc' }, 'positive integers separated by commas'],
    ['a negative number', { BENCH_CLIENTS: '-1' }, 'positive integers separated by commas'],
    ['zero clients', { BENCH_CLIENTS: '0' }, 'positive integers separated by commas'],
    ['a fraction', { TICK_MS: '100.5' }, 'positive integers separated by commas'],
    ['an empty item', { TICK_MS: '1000,,100' }, 'positive integers separated by commas'],
    ['zero workers', { BENCH_WORKERS: '0' }, 'positive integers separated by commas'],
    [
      'a word in the storm',
      { BENCH_STORM: '5000,x,2000' },
      'positive integers separated by commas',
    ],
    [
      'a storm of two numbers',
      { BENCH_STORM: '5000,100' },
      '"watchers,buyers,buys per second" or "off"',
    ],
    [
      'a storm of four numbers',
      { BENCH_STORM: '1,2,3,4' },
      '"watchers,buyers,buys per second" or "off"',
    ],
    [
      'an unknown server',
      { BENCH_SERVERS: 'nginx' },
      '"forkcast", "tutorial" or "raw", or several separated by commas',
    ],
    [
      'a miscased server',
      { BENCH_SERVERS: 'forkcast,Raw' },
      '"forkcast", "tutorial" or "raw", or several separated by commas',
    ],
    [
      'an empty server in the list',
      { BENCH_SERVERS: 'forkcast,,tutorial' },
      '"forkcast", "tutorial" or "raw", or several separated by commas',
    ],
    ['a pin setting other than 0 or 1', { BENCH_PIN: 'yes' }, '0 or 1'],
    ['a cluster of no nodes', { BENCH_CLUSTER: '1,0' }, 'positive integers separated by commas'],
    ['a word for the cluster', { BENCH_CLUSTER: 'on' }, 'positive integers separated by commas'],
    ['a node range', { BENCH_CLUSTER: '1-3' }, 'positive integers separated by commas'],
  ])('rejects %s, naming the variable', (_label, env, expected) => {
    const [[name, value]] = Object.entries(env) as [[string, string]];
    expect(() => optionsFromEnv(env)).toThrow(`${name} must be ${expected}, got "${value}"`);
  });

  test('an empty variable counts as unset', () => {
    expect(optionsFromEnv({ BENCH_CLIENTS: '', BENCH_STORM: ' ' })).toMatchObject({
      clients: [1000, 5000, 10000],
      storm: { watchers: 5000, buyers: 100, buysPerSecond: 2000 },
    });
  });
});

describe('stormState', () => {
  test('leaves room for 20 s of 2,000 buys/s on every stock without leaving the doubles', () => {
    const state = stormState(1_764_230_000_000);
    expect(state.stocks.map((stock) => stock.name)).toEqual(['Apple', 'Microsoft', 'Facebook']);
    // 40,000 buys round robin over three stocks: at most 13,334 each.
    const buysPerStock = 13_500;
    // In powers of ten, as 1.1^13500 alone is beyond a double.
    const finalExponent = (price: number): number =>
      Math.log10(price) + buysPerStock * Math.log10(1.1);
    for (const { price } of state.stocks) {
      expect(price).toBeGreaterThan(0);
      expect(finalExponent(price)).toBeLessThan(Math.log10(Number.MAX_VALUE));
    }
    // Whereas the seed prices would overflow long before.
    expect(finalExponent(14.5)).toBeGreaterThan(Math.log10(Number.MAX_VALUE));
  });
});

describe('portIn', () => {
  test('reads the port from forkcast’s listening line', () => {
    const line = JSON.stringify({
      level: 30,
      time: 1764230000123,
      pid: 4242,
      hostname: 'bench',
      url: 'http://127.0.0.1:4567',
      msg: 'forkcast listening',
    });
    expect(portIn(line)).toBe(4567);
    expect(portIn('{"level":30,"msg":"listening","url":"http://127.0.0.1:4567"}')).toBe(4567);
  });

  test('reads the port from the raw baseline’s line', () => {
    expect(portIn('{"port":1234}')).toBe(1234);
    expect(portIn('{"msg":"raw baseline listening","port":1234}')).toBe(1234);
  });

  test.each([
    'Debugger listening on ws://127.0.0.1:9229/abc',
    '',
    'null',
    '42',
    '"http://127.0.0.1:4567"',
    '{"level":30,"msg":"ticker ready"}',
    '{"port":"1234"}',
    // Later log lines carry request paths in `url`; they must not throw.
    '{"level":50,"url":"/api/x","msg":"request failed"}',
    '{"url":"http://[::1"}',
  ])('is null for %j', (line) => {
    expect(portIn(line)).toBeNull();
  });
});

describe('median', () => {
  test.each<[number[], number]>([
    [[5], 5],
    [[3, 1, 2], 2],
    [[40, 10, 30, 20], 25],
    [[2, 1], 1.5],
    [[100, 9, 10], 10],
  ])('median(%j) is %d', (values, expected) => {
    expect(median(values)).toBe(expected);
  });

  test('leaves its input unsorted', () => {
    const values = [3, 1, 2];
    median(values);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe('spreading the clients over workers and nodes', () => {
  test('nodeOf goes round robin over the nodes', () => {
    expect(Array.from({ length: 7 }, (_, i) => nodeOf(i, 3))).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(Array.from({ length: 3 }, (_, i) => nodeOf(i, 1))).toEqual([0, 0, 0]);
  });

  test('workerShares numbers the clients through the run', () => {
    expect(workerShares({ watchers: 10, buyers: 0, buysPerSecond: 0 }, 3)).toEqual([
      { watchers: 4, buyers: 0, buysPerSecond: 0, niceness: 0, firstClient: 0 },
      { watchers: 3, buyers: 0, buysPerSecond: 0, niceness: 0, firstClient: 4 },
      { watchers: 3, buyers: 0, buysPerSecond: 0, niceness: 0, firstClient: 7 },
    ]);
  });

  test('in a storm the buyers get a worker of their own, after the lower-priority watchers', () => {
    expect(workerShares({ watchers: 5, buyers: 2, buysPerSecond: 40 }, 2)).toEqual([
      { watchers: 3, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 0 },
      { watchers: 2, buyers: 0, buysPerSecond: 0, niceness: 10, firstClient: 3 },
      { watchers: 0, buyers: 2, buysPerSecond: 40, niceness: 0, firstClient: 5 },
    ]);
  });

  test('every node gets an even share of the whole run, whatever the workers’ shares', () => {
    for (const total of [0, 1, 2, 7, 30, 1001]) {
      for (let workers = 1; workers <= 4; workers++) {
        for (let nodes = 1; nodes <= 3; nodes++) {
          const perNode = Array<number>(nodes).fill(0);
          for (const share of workerShares(
            { watchers: total, buyers: 0, buysPerSecond: 0 },
            workers,
          ))
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

  describe('leaderOf', () => {
    test.each<{ label: string; healths: unknown[]; expected: number | null }>([
      { label: 'a lone leader with its ticker child', healths: [leaderA], expected: 0 },
      {
        label: 'a leader and a follower naming it',
        healths: [leaderA, health('b', 'follower', 'a')],
        expected: 0,
      },
      {
        label: 'a leader after two followers',
        healths: [health('b', 'follower', 'a'), health('c', 'follower', 'a'), leaderA],
        expected: 2,
      },
      {
        label: 'a leader whose ticker child is not up yet',
        healths: [health('a', 'leader', 'a')],
        expected: null,
      },
      {
        label: 'a follower that does not know the leader yet',
        healths: [leaderA, health('b', 'follower', null, { status: 'degraded' })],
        expected: null,
      },
      {
        label: 'a follower naming an old leader',
        healths: [leaderA, health('b', 'follower', 'z')],
        expected: null,
      },
      {
        label: 'two leaders',
        healths: [leaderA, health('b', 'leader', 'b', { pid: 4343 }), health('c', 'follower', 'a')],
        expected: null,
      },
      {
        label: 'followers only',
        healths: [health('b', 'follower', 'a'), health('c', 'follower', 'a')],
        expected: null,
      },
      { label: 'a node that did not answer', healths: [leaderA, null], expected: null },
      {
        label: 'a node that answered something else',
        healths: [leaderA, { error: 'Not found' }],
        expected: null,
      },
      {
        label: 'a leader whose Redis is down',
        healths: [health('a', 'leader', 'a', { pid: 1, status: 'degraded' })],
        expected: null,
      },
      { label: 'no nodes', healths: [], expected: null },
    ])('$label: $expected', ({ healths, expected }) => {
      expect(leaderOf(healths)).toBe(expected);
    });
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
    const nodeReport = (connected: number, delivered: number, latencies: number[]): NodeReport => {
      const latency: Histogram = new Map();
      for (const ms of latencies) record(latency, ms);
      return {
        connected,
        delivered,
        late: latencies.filter((ms) => ms > 1000).length,
        latency: [...latency],
      };
    };
    const workerReport = (nodes: NodeReport[], seqs: number[]): WorkerReport => {
      const latency: Histogram = new Map();
      for (const node of nodes) merge(latency, node.latency);
      return {
        connected: nodes.reduce((sum, node) => sum + node.connected, 0),
        lost: 0,
        delivered: nodes.reduce((sum, node) => sum + node.delivered, 0),
        late: nodes.reduce((sum, node) => sum + node.late, 0),
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
        workerReport(
          [
            nodeReport(1, 10, Array<number>(10).fill(2)),
            nodeReport(1, 10, Array<number>(10).fill(6)),
          ],
          tenSeqs,
        ),
        workerReport(
          [
            nodeReport(1, 10, [...Array<number>(9).fill(4), 1500]),
            nodeReport(1, 8, Array<number>(8).fill(8)),
          ],
          tenSeqs.slice(2),
        ),
      ],
      cpuMicros: [2_000_000, 1_000_000, 500_000],
      loadCpuMicros: 800_000,
      rssGrowth: [20 * 1024, 40 * 1024],
    };
    const run = { leader: 0, leaderAfter: 0, serverStartMs: 600, leaderElectedMs: 900 };
    const figures = summarizeCluster(scenario, { seconds: 10 }, measured, run);

    test('counts the whole cluster like one server', () => {
      expect(figures).toMatchObject({
        name: 'fan-out',
        kind: 'cluster',
        nodes: 2,
        watchers: 4,
        buyers: 0,
        buysPerSecond: 0,
        tickMs: 1000,
        clients: 4,
        seconds: 10,
        broadcasts: 10,
        delivered: 38,
        deliveredPerSecond: 3.8,
        missed: 2,
        late: 1,
        serverStartMs: 600,
        leaderElectedMs: 900,
        leader: 0,
        leaderAfter: 0,
      });
      expect(figures.latencyMs.count).toBe(38);
      expect(figures.latencyMs.max).toBeCloseTo(1500, 9);
    });

    test('charges every node and Redis with the CPU, and names Redis’s part', () => {
      expect(figures.serverCpuPercent).toBeCloseTo(35, 9);
      expect(figures.cpuMicrosPerUpdate).toBeCloseTo(3_500_000 / 38, 9);
      expect(figures.redisCpuPercent).toBeCloseTo(5, 9);
      expect(figures.redisCpuMicrosPerUpdate).toBeCloseTo(500_000 / 38, 9);
      expect(figures.loadCpuPercent).toBeCloseTo(8, 9);
    });

    test('memory per connection is every node’s growth over all the clients', () => {
      expect(figures.memoryPerConnectionKB).toBeCloseTo(60 / 4, 9);
    });

    test('splits deliveries, misses, latency, CPU and memory by node', () => {
      expect(
        figures.perNode.map(({ latencyMs, ...node }) => ({ ...node, p50: latencyMs.p50 })),
      ).toEqual([
        {
          node: 0,
          role: 'leader',
          clients: 2,
          delivered: 20,
          deliveredPerSecond: 2,
          missed: 0,
          late: 1,
          p50: expect.closeTo(2, 9) as unknown,
          cpuPercent: 20,
          memoryPerConnectionKB: 10,
        },
        {
          node: 1,
          role: 'follower',
          clients: 2,
          delivered: 18,
          deliveredPerSecond: 1.8,
          missed: 2,
          late: 0,
          p50: expect.closeTo(6, 9) as unknown,
          cpuPercent: 10,
          memoryPerConnectionKB: 20,
        },
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
    expect(found).toEqual([
      expect.objectContaining({
        kind: 'cluster',
        nodes: 1,
        clients: 1000,
        tickMs: 1000,
        cpuPerUpdate: 3,
        p50: 1.5,
        p99: 1.25,
      }),
      expect.objectContaining({
        kind: 'cluster',
        nodes: 3,
        clients: 1000,
        tickMs: 1000,
        cpuPerUpdate: 4.5,
        p50: 2,
        p99: 2,
      }),
    ]);
  });

  const cells = (text: string): string[][] =>
    text
      .split('\n')
      .slice(2)
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );

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
    expect(rows.map((row) => [row[0], row[1], row[2], row[12], row[15]])).toEqual([
      ['raw', '1', '1,000', '–', '–'],
      ['forkcast', '1', '1,000', '–', '–'],
      ['cluster', '1', '1,000', '1.5', '0.75'],
      ['cluster', '2', '1,000', '1.5', '0.75'],
      ['raw', '1', '5,000', '–', '–'],
      ['cluster', '2', '5,000', '2.3', '0.75'],
    ]);
  });

  test('clusterRatioTable and clusterNodeTable write one row per cluster and per node', () => {
    const [ratioRow] = cells(
      clusterRatioTable([
        {
          kind: 'cluster',
          nodes: 3,
          clients: 5000,
          tickMs: 1000,
          cpuPerUpdate: 1.5,
          p50: 2,
          p99: 3,
          memoryPerConnection: 1,
          deliveredPerSecond: 1,
        },
      ]),
    );
    expect(ratioRow).toEqual(['3', '5,000', '1 Hz', '1.50×', '2.00×', '3.00×', '1.00×', '1.00×']);

    const node = {
      clients: 500,
      delivered: 10_000,
      deliveredPerSecond: 500,
      late: 0,
      latencyMs: summary(5, 20),
      cpuPercent: 12.5,
      memoryPerConnectionKB: 18,
    };
    const rows = cells(
      clusterNodeTable([
        clusterResult({
          leader: 1,
          perNode: [
            { ...node, node: 0, role: 'follower', missed: 3 },
            { ...node, node: 1, role: 'leader', missed: 0 },
          ],
        }),
      ]),
    );
    expect(rows.map((row) => [row[3], row[4], row[5], row[7], row[9], row[12]])).toEqual([
      ['0', 'follower', '500', '3', '5.00', '12.5'],
      ['1', 'leader', '500', '0', '5.00', '12.5'],
    ]);
  });
});
