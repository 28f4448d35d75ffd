import path from 'node:path';

import {
  buyFrame,
  isPing,
  isSocketIoUpdate,
  parseAck,
  seqAndTs,
  socketIoUrl,
} from '../../bench/frames';
import { parseRss, parseStat, rssBytes, treeCpuMicros } from '../../bench/proc';
import { ratios, ratioTable, table } from '../../bench/report';
import { optionsFromEnv } from '../../bench/run';
import { shares, stormState, type ScenarioResult } from '../../bench/scenario';
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
    test('divides forkcast by the raw run with the same clients and tick', () => {
      const found = ratios([
        result({
          kind: 'forkcast',
          cpuMicrosPerUpdate: 6,
          latencyMs: summary(3, 10),
          memoryPerConnectionKB: 12,
          deliveredPerSecond: 900,
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
      expect(ratio?.cpuPerUpdate).toBeCloseTo(3, 9);
      expect(ratio?.p50).toBeCloseTo(2, 9);
      expect(ratio?.p99).toBeCloseTo(2.5, 9);
      expect(ratio?.memoryPerConnection).toBeCloseTo(4, 9);
      expect(ratio?.deliveredPerSecond).toBeCloseTo(0.9, 9);
    });

    test('pairs each forkcast run with its own raw run, in forkcast order', () => {
      const found = ratios([
        result({ kind: 'raw', clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 1 }),
        result({ kind: 'raw', clients: 5000, tickMs: 1000, cpuMicrosPerUpdate: 2 }),
        result({ kind: 'raw', clients: 1000, tickMs: 100, cpuMicrosPerUpdate: 4 }),
        result({ kind: 'forkcast', clients: 1000, tickMs: 100, cpuMicrosPerUpdate: 8 }),
        result({ kind: 'forkcast', clients: 5000, tickMs: 1000, cpuMicrosPerUpdate: 8 }),
        result({ kind: 'forkcast', clients: 5000, tickMs: 100, cpuMicrosPerUpdate: 8 }),
      ]);
      expect(
        found.map(({ clients, tickMs, cpuPerUpdate }) => [clients, tickMs, cpuPerUpdate]),
      ).toEqual([
        [1000, 100, 2],
        [5000, 1000, 4],
        [5000, 100, 8],
      ]);
    });

    test('ignores runs measured with one server only', () => {
      expect(
        ratios([
          result({ kind: 'forkcast', clients: 1000, tickMs: 1000 }),
          result({ kind: 'raw', clients: 5000, tickMs: 1000 }),
          result({ kind: 'raw', clients: 1000, tickMs: 100 }),
        ]),
      ).toEqual([]);
    });

    test('ignores buy-storm runs on either side', () => {
      // The storm runs sit first, so a missing filter would pair them instead of the fan-out.
      const found = ratios([
        result({ name: 'buy-storm', kind: 'raw', cpuMicrosPerUpdate: 100 }),
        result({ name: 'buy-storm', kind: 'forkcast', cpuMicrosPerUpdate: 100 }),
        result({ kind: 'raw', cpuMicrosPerUpdate: 4 }),
        result({ kind: 'forkcast', cpuMicrosPerUpdate: 5 }),
      ]);
      expect(found).toHaveLength(1);
      expect(found[0]?.cpuPerUpdate).toBeCloseTo(1.25, 9);
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

  test('ratioTable writes counts with separators, rates in Hz and ratios with ×', () => {
    const [, , row] = ratioTable([
      {
        clients: 10000,
        tickMs: 100,
        cpuPerUpdate: 1.5,
        p50: 2,
        p99: Number.NaN,
        memoryPerConnection: 0.25,
        deliveredPerSecond: 1,
      },
    ]).split('\n');
    expect(row?.split('|').map((cell) => cell.trim())).toEqual([
      '',
      '10,000',
      '10 Hz',
      '1.50×',
      '2.00×',
      '–×',
      '0.25×',
      '1.00×',
      '',
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
      servers: ['forkcast', 'raw'],
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
        BENCH_SERVERS: ' raw ',
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
      servers: ['raw'],
      storm: { watchers: 300, buyers: 10, buysPerSecond: 50 },
      startupRuns: 2,
      pin: false,
      out: path.resolve('out/run.jsonl'),
    });
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
      '"forkcast", "raw" or both, separated by commas',
    ],
    [
      'a miscased server',
      { BENCH_SERVERS: 'forkcast,Raw' },
      '"forkcast", "raw" or both, separated by commas',
    ],
    ['a pin setting other than 0 or 1', { BENCH_PIN: 'yes' }, '0 or 1'],
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
