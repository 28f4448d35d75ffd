/**
 * The state file against real files in a temporary folder: throttled, atomic writes of the
 * newest state, and a load that turns anything but a valid state into null and a log line.
 * write-file-atomic is wrapped (not replaced) so the test can count the writes it really does.
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type writeFileAtomicType from 'write-file-atomic';

import type { TickerState } from '../../protocol/ipc';
import { tickerStateSchema } from '../../protocol/validation';
import { createStateFile, type StateFile } from '../../server/state-file';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { delay } from '../helpers/recorder';
import { decayAll, SEED, stateOf, withBuy } from '../helpers/prices';

/** Every write the state file hands to write-file-atomic: target, data, and when. */
const mockWrites: { file: string; data: string; at: number }[] = [];

jest.mock('write-file-atomic', () => {
  const actual = jest.requireActual<typeof writeFileAtomicType>('write-file-atomic');
  const wrapped = (...args: Parameters<typeof writeFileAtomicType>) => {
    mockWrites.push({ file: String(args[0]), data: String(args[1]), at: performance.now() });
    return actual(...args);
  };
  return Object.assign(wrapped, { sync: actual.sync });
});

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-state-'));
  file = path.join(dir, 'state.json');
  mockWrites.length = 0;
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function open(throttleMs: number, at = file) {
  const { logger, lines } = capturingLogger();
  return { store: createStateFile({ path: at, logger, throttleMs }), lines };
}

/** A distinct, valid state per n: n ticks of decay from the seed, seq n. */
function nth(n: number, running = true): TickerState {
  let stocks = SEED.map((stock) => ({ ...stock }));
  for (let i = 0; i < n; i++) stocks = decayAll(stocks);
  return stateOf({ stocks, running, seq: n, ts: 1_700_000_000_000 + n });
}

function onDisk(at = file): unknown {
  return JSON.parse(readFileSync(at, 'utf8'));
}

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(5);
  }
}

describe('save', () => {
  test('a burst of 10 saves in one turn is one write, of the last state', async () => {
    const { store } = open(200);
    for (let n = 1; n <= 10; n++) store.save(nth(n));
    await until(() => mockWrites.length > 0, 2_000, 'the first write');
    await store.flush();
    expect(mockWrites).toHaveLength(1);
    expect(onDisk()).toEqual(nth(10));
  });

  test('10 saves spread over the throttle window are at most 2 writes, throttleMs apart', async () => {
    const THROTTLE_MS = 200;
    const { store } = open(THROTTLE_MS);
    for (let n = 1; n <= 10; n++) {
      store.save(nth(n));
      await delay(10);
    }
    // The leading write went out at once with state 1; the trailing one carries state 10.
    await until(() => mockWrites.length >= 2, 2_000, 'the trailing write');
    await store.flush();
    expect(mockWrites.map((write) => JSON.parse(write.data) as unknown)).toEqual([nth(1), nth(10)]);
    const [first, second] = mockWrites;
    // Timed at the call into write-file-atomic, a little after the throttle's own clock
    // (the first write creates the folder first), hence the slack.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(THROTTLE_MS * 0.8);
    expect(onDisk()).toEqual(nth(10));
  });

  test('while saves keep coming, writes happen at most once per throttleMs', async () => {
    const THROTTLE_MS = 100;
    const { store } = open(THROTTLE_MS);
    const started = performance.now();
    let n = 0;
    while (performance.now() - started < 550) {
      store.save(nth(++n));
      await delay(5);
    }
    await store.flush();
    const elapsed = performance.now() - started;
    // One leading write, then one per window, then the flush: never one per save.
    expect(n).toBeGreaterThan(20);
    expect(mockWrites.length).toBeLessThanOrEqual(Math.ceil(elapsed / THROTTLE_MS) + 1);
    for (const [i, write] of mockWrites.entries()) {
      const previous = mockWrites[i - 1];
      // The last write may be the flush, which does not wait for the window.
      if (previous && i < mockWrites.length - 1) {
        expect(write.at - previous.at).toBeGreaterThanOrEqual(THROTTLE_MS * 0.8);
      }
    }
    expect(onDisk()).toEqual(nth(n));
  });

  test('flush writes the newest state now, without waiting for the throttle', async () => {
    const { store } = open(60_000);
    store.save(nth(1));
    store.save(nth(2));
    await store.flush();
    expect(onDisk()).toEqual(nth(2));
    expect(mockWrites).toHaveLength(1);

    // The throttle window is now a minute long; flush does not wait for it.
    store.save(nth(3));
    const started = performance.now();
    await store.flush();
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(onDisk()).toEqual(nth(3));
    expect(mockWrites).toHaveLength(2);

    // Nothing pending: flush writes nothing.
    await store.flush();
    expect(mockWrites).toHaveLength(2);
  });

  test('the file is the JSON of the last state, exact to the bit, with no temp file left', async () => {
    const { store } = open(0);
    const state = stateOf({
      stocks: withBuy(decayAll(decayAll(SEED)), 'Facebook', 3),
      running: false,
      seq: 12_345,
      ts: 1_700_000_123_456,
    });
    store.save(state);
    await store.flush();
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(`${JSON.stringify(state)}\n`);
    expect(JSON.parse(text)).toEqual(state);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  test('the folder is created when missing', async () => {
    const nested = path.join(dir, 'a', 'b', 'state.json');
    const { store } = open(0, nested);
    store.save(nth(1));
    await store.flush();
    expect(onDisk(nested)).toEqual(nth(1));
  });

  test('a failed write is logged, not thrown, and the next save tries again', async () => {
    // A regular file where the folder should be: mkdir and the write fail.
    const blocker = path.join(dir, 'blocker');
    writeFileSync(blocker, 'x');
    const target = path.join(blocker, 'state.json');
    const { store, lines } = open(0, target);
    store.save(nth(1));
    await expect(store.flush()).resolves.toBeUndefined();
    const [logged] = linesWith(lines, 'could not write the state file');
    expect(logged).toMatchObject({ level: LEVEL.error, file: target });

    rmSync(blocker);
    store.save(nth(2));
    await store.flush();
    expect(onDisk(target)).toEqual(nth(2));
  });

  test('a reader never sees a partial file while writes go on continuously', async () => {
    const { store } = open(0);
    store.save(nth(0));
    await store.flush();

    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let n = 1; writing; n++) {
        store.save(nth(n, n % 2 === 0));
        await store.flush();
        written = n;
        // A macrotask turn per write, so that a write that never touches the disk cannot
        // starve the reader (and the test's own deadline) of the event loop.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    // Reads go through the thread pool, concurrently with the writer's open / write / rename.
    const bad: string[] = [];
    let reads = 0;
    const started = performance.now();
    try {
      // Until enough of both have overlapped; a loaded machine just takes longer.
      while ((written < 30 || reads < 300) && performance.now() - started < 5_000) {
        const batch = await Promise.all(
          Array.from({ length: 4 }, () => readFile(file, 'utf8').catch(String)),
        );
        for (const text of batch) {
          reads++;
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            bad.push(text);
            continue;
          }
          if (!tickerStateSchema.safeParse(parsed).success) bad.push(text);
        }
      }
    } finally {
      writing = false;
      await writer;
    }
    expect({ partialReads: bad.length, first: bad.slice(0, 3) }).toEqual({
      partialReads: 0,
      first: [],
    });
    expect(written).toBeGreaterThanOrEqual(30);
    expect(reads).toBeGreaterThanOrEqual(300);
    expect(onDisk()).toEqual(nth(written, written % 2 === 0));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });
});

describe('load', () => {
  /** A state file holding exactly this text, and what load() made of it. */
  async function loadText(
    text: string,
  ): Promise<{ loaded: unknown; lines: ReturnType<typeof open>['lines'] }> {
    writeFileSync(file, text);
    const { store, lines } = open(1_000);
    return { loaded: await store.load(), lines };
  }

  test('a good file gives the state back exactly', async () => {
    const state = stateOf({
      stocks: withBuy(decayAll(SEED), 'Apple', 2),
      running: true,
      seq: 41,
      ts: 1_700_000_999_999,
    });
    const { loaded, lines } = await loadText(`${JSON.stringify(state)}\n`);
    expect(loaded).toEqual(state);
    expect(linesWith(lines, 'resumed saved state')).toEqual([
      expect.objectContaining({ level: LEVEL.info, file, seq: 41, running: true }),
    ]);
  });

  test('what save wrote, a new store loads', async () => {
    const first: StateFile = open(0).store;
    first.save(nth(7, false));
    await first.flush();
    await expect(open(0).store.load()).resolves.toEqual(nth(7, false));
  });

  test('a missing file is null, logged as info', async () => {
    const { store, lines } = open(1_000);
    await expect(store.load()).resolves.toBeNull();
    expect(linesWith(lines, 'no state file yet; starting from the seed prices')).toEqual([
      expect.objectContaining({ level: LEVEL.info, file }),
    ]);
  });

  test('a folder where the file should be is null, logged as an error', async () => {
    mkdirSync(file);
    const { store, lines } = open(1_000);
    await expect(store.load()).resolves.toBeNull();
    expect(
      linesWith(lines, 'could not read the state file; starting from the seed prices'),
    ).toEqual([expect.objectContaining({ level: LEVEL.error, file })]);
    expect(statSync(file).isDirectory()).toBe(true);
  });

  const good = JSON.stringify(nth(3));
  test.each([
    ['empty', ''],
    ['only whitespace', '  \n'],
    ['truncated', good.slice(0, Math.floor(good.length / 2))],
    ['missing its last brace', good.slice(0, -1)],
    ['not JSON', 'state: running\n'],
  ])('a file that is %s is null, logged as a warning', async (_what, text) => {
    const { loaded, lines } = await loadText(text);
    expect(loaded).toBeNull();
    expect(linesWith(lines, 'state file is empty or torn; starting from the seed prices')).toEqual([
      expect.objectContaining({ level: LEVEL.warn, file, bytes: text.length }),
    ]);
  });

  const valid = nth(3);
  const reversed = { ...valid, stocks: [...valid.stocks].reverse() };
  const [apple, microsoft] = valid.stocks;
  test.each<[string, unknown]>([
    ['stocks in the wrong order', reversed],
    ['a stock missing', { ...valid, stocks: [apple, microsoft] }],
    ['a stock twice', { ...valid, stocks: [apple, apple, microsoft] }],
    ['an unknown stock', { ...valid, stocks: [apple, microsoft, { name: 'Google', price: 1 }] }],
    // JSON.stringify writes NaN and Infinity as null.
    [
      'a NaN price',
      { ...valid, stocks: [{ name: 'Apple', price: NaN }, microsoft, valid.stocks[2]] },
    ],
    [
      'a zero price',
      { ...valid, stocks: [{ name: 'Apple', price: 0 }, microsoft, valid.stocks[2]] },
    ],
    [
      'a negative price',
      { ...valid, stocks: [{ name: 'Apple', price: -1 }, microsoft, valid.stocks[2]] },
    ],
    [
      'a price as a string',
      { ...valid, stocks: [{ name: 'Apple', price: '14.5' }, microsoft, valid.stocks[2]] },
    ],
    ['a negative seq', { ...valid, seq: -1 }],
    ['a fractional seq', { ...valid, seq: 1.5 }],
    ['running as a string', { ...valid, running: 'true' }],
    ['no ts', { stocks: valid.stocks, running: true, seq: 3 }],
    ['an extra field', { ...valid, leader: 'node-1' }],
    ['an array', [valid]],
    ['null', null],
    ['a number', 42],
  ])('a file with %s is null, logged as a warning', async (_what, content) => {
    const { loaded, lines } = await loadText(JSON.stringify(content));
    expect(loaded).toBeNull();
    expect(
      linesWith(lines, 'state file is not a valid state; starting from the seed prices'),
    ).toEqual([expect.objectContaining({ level: LEVEL.warn, file, problem: expect.any(String) })]);
  });
});
