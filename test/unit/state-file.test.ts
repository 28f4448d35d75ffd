/**
 * The state file against real files in a temporary folder. open(): the seed, a saved state back
 * exactly, an unannounced buy turned into an update of its own, anything unusable moved aside
 * and logged, a path that cannot be used refused. commit(): group commit, one write at a time,
 * each promise settled only once its state is on disk, a failure voiding the batch behind it,
 * and recovery. Writes are watched through the store's `write` seam around the real writer.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { UpdatePayload } from '../../protocol/events';
import { savedStateSchema } from '../../protocol/validation';
import { createStateFile, writeInThread, type SavedState } from '../../server/state-file';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { decayAll, SEED, stateOf, withBuy } from '../helpers/prices';

let dir: string;
let file: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-state-'));
  file = path.join(dir, 'state.json');
});

afterEach(() => {
  jest.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

type Write = (file: string, text: string) => Promise<void>;
/** Set by a test to stand between the store and the real writer; reset after each test. */
let around: ((real: Write, file: string, text: string) => Promise<void>) | null = null;
afterEach(() => {
  around = null;
});

function create(at = file, deadlineMs?: number) {
  const { logger, lines } = capturingLogger();
  const write: Write = (target, text) =>
    around ? around(writeInThread, target, text) : writeInThread(target, text);
  const store = createStateFile({
    path: at,
    logger,
    write,
    ...(deadlineMs ? { deadlineMs } : {}),
  });
  return { store, lines };
}

/** A store whose open() has run on a missing file (so the file now holds the seed). */
async function opened(deadlineMs?: number) {
  const created = create(file, deadlineMs);
  await created.store.open();
  return created;
}

/** A distinct, valid state per n: n ticks of decay from the seed, seq n. */
function nth(n: number, running = true, unannounced = false): SavedState {
  let stocks = SEED.map((stock) => ({ ...stock }));
  for (let i = 0; i < n; i++) stocks = decayAll(stocks);
  return { ...stateOf({ stocks, running, seq: n, ts: 1_700_000_000_000 + n }), unannounced };
}

function tickerOf({ unannounced: _mark, ...state }: SavedState): UpdatePayload {
  return state;
}

/** How a promise made where nobody awaits it yet ended, so that its rejection is handled. */
function outcome(promise: Promise<void>): Promise<string> {
  return promise.then(
    () => 'written',
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
}

function onDisk(at = file): unknown {
  return JSON.parse(readFileSync(at, 'utf8'));
}

function seqOnDisk(): number {
  return savedStateSchema.parse(onDisk()).seq;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The folder of the file becomes a regular file: opening the temp file fails with ENOTDIR. */
function breakFolder(): void {
  rmSync(dir, { recursive: true, force: true });
  writeFileSync(dir, 'not a folder');
}

function restoreFolder(): void {
  rmSync(dir, { force: true });
  mkdirSync(dir);
}

/**
 * Every write the store does, as the state it renames into place, and whether one ever began
 * (opened its temp file) before the one before it had renamed its own.
 */
function watchWrites(onStart: () => void = () => undefined) {
  const written: unknown[] = [];
  let inFlight = false;
  let overlaps = 0;
  around = async (real, target, text) => {
    if (inFlight) overlaps++;
    inFlight = true;
    onStart();
    try {
      await real(target, text);
      written.push(JSON.parse(text));
    } finally {
      inFlight = false;
    }
  };
  return { written, overlaps: () => overlaps };
}

describe('open', () => {
  test('a missing file: the seed prices, logged, and written at once, folders and all', async () => {
    const nested = path.join(dir, 'a', 'b', 'state.json');
    const { store, lines } = create(nested);
    const before = Date.now();
    const state = await store.open();
    expect(state).toEqual({ stocks: SEED, running: false, seq: 0, ts: expect.any(Number) });
    expect(state.ts).toBeGreaterThanOrEqual(before);
    expect(state.ts).toBeLessThanOrEqual(Date.now());
    expect(readFileSync(nested, 'utf8')).toBe(
      `${JSON.stringify({ ...state, unannounced: false })}\n`,
    );
    expect(readdirSync(path.dirname(nested))).toEqual(['state.json']);
    expect(linesWith(lines, 'no state file yet; starting from the seed prices')).toEqual([
      expect.objectContaining({ level: LEVEL.info, file: nested }),
    ]);
    expect(store.healthy).toBe(true);
  });

  // 2^53 - 3: the highest seq a file may hold, so that seq + 1 is still exact.
  const LAST_SEQ = Number.MAX_SAFE_INTEGER - 2;

  test('what commit wrote, exact to the bit and with no temp file left, a new store opens and writes back byte for byte', async () => {
    const { store } = await opened();
    const state: SavedState = {
      ...nth(7),
      stocks: withBuy(nth(7).stocks, 'Facebook', 3),
      seq: LAST_SEQ,
    };
    await store.commit(state);
    const text = `${JSON.stringify(state)}\n`;
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(dir)).toEqual(['state.json']);
    const again = create();
    await expect(again.store.open()).resolves.toEqual(tickerOf(state));
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(linesWith(again.lines, 'resumed saved state')).toEqual([
      expect.objectContaining({ level: LEVEL.info, file, seq: LAST_SEQ, running: true }),
    ]);
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  test('a file from before the unannounced mark is read as announced', async () => {
    const { unannounced: _mark, ...old } = nth(5);
    writeFileSync(file, JSON.stringify(old));
    await expect(create().store.open()).resolves.toEqual(old);
    expect(onDisk()).toEqual({ ...old, unannounced: false });
  });

  test('an unannounced buy becomes an update of its own: seq + 1 (exact even at the last seq), ts now, the prices kept', async () => {
    const saved: SavedState = {
      ...nth(9, false, true),
      stocks: withBuy(nth(9).stocks, 'Microsoft'),
    };
    writeFileSync(file, JSON.stringify(saved));
    const before = Date.now();
    const state = await create().store.open();
    expect(state).toEqual({
      stocks: saved.stocks,
      running: false,
      seq: 10,
      ts: expect.any(Number),
    });
    expect(state.ts).toBeGreaterThanOrEqual(before);
    // Written back announced, so a second start does not count the same buy again.
    expect(onDisk()).toEqual({ ...state, unannounced: false });
    await expect(create().store.open()).resolves.toEqual(state);

    writeFileSync(file, JSON.stringify({ ...saved, seq: LAST_SEQ }));
    await expect(create().store.open()).resolves.toMatchObject({ seq: LAST_SEQ + 1 });
  });

  // What the file holds is checked by the state schema (test/unit/validation.test.ts); here,
  // what open() does with a file that fails to read as JSON or as a state.
  const goodText = JSON.stringify(nth(3));
  test.each<[string, string, string]>([
    ['empty', '', 'empty'],
    ['only whitespace', ' \n', 'not JSON'],
    ['torn in the middle', goodText.slice(0, Math.floor(goodText.length / 2)), 'not JSON'],
    ['missing its last brace', goodText.slice(0, -1), 'not JSON'],
    // 1e999 is valid JSON and parses to Infinity.
    ['a price of 1e999', goodText.replace(/"price":[\d.]+/, '"price":1e999'), 'stocks.0.price: '],
    ['seq 2^53 - 2', JSON.stringify({ ...nth(3), seq: LAST_SEQ + 1 }), 'seq: seq is too close'],
    ['null', 'null', ': '],
  ])(
    'a file that is %s is moved aside with its bytes, logged, and the seed used',
    async (_what, text, problem) => {
      writeFileSync(file, text);
      const { store, lines } = create();
      const state = await store.open();
      expect(state).toEqual({ stocks: SEED, running: false, seq: 0, ts: expect.any(Number) });
      // A fresh, valid state file holds the seed, and the bad one sits next to it, untouched.
      expect(onDisk()).toEqual({ ...state, unannounced: false });
      const aside = readdirSync(dir).filter((name) => name !== 'state.json');
      expect(aside).toEqual([expect.stringMatching(/^state\.json\.corrupt-\d{4}-[\dTZ-]+$/)]);
      const movedTo = path.join(dir, aside[0]!);
      expect(readFileSync(movedTo, 'utf8')).toBe(text);
      expect(linesWith(lines, 'state file unusable; starting from the seed')).toEqual([
        expect.objectContaining({
          level: LEVEL.error,
          file,
          movedTo,
          problem: expect.stringContaining(problem),
        }),
      ]);
      expect(store.healthy).toBe(true);
    },
  );

  // A folder, and a path under /proc/self (which hangs): state-faults.test.ts, in a process.
  test.each([
    ['under a file', () => path.join(dir, 'blocker', 'state.json'), '.*(EEXIST|ENOTDIR)'],
    ...(process.platform === 'linux'
      ? [['directly in /proc', () => '/proc/forkcast-test-state.json', '']]
      : []),
  ] as [string, () => string, string][])(
    'a path that is %s: open() rejects within the deadline naming the file, and moves nothing',
    async (_what, makePath, why) => {
      writeFileSync(path.join(dir, 'blocker'), 'x');
      const at = makePath();
      const before = readdirSync(dir);
      const started = performance.now();
      await expect(create(at, 300).store.open()).rejects.toThrow(
        new RegExp(`^state file ${at}: ${why}`),
      );
      expect(performance.now() - started).toBeLessThan(300 + 1_000);
      expect(readdirSync(dir)).toEqual(before);
      expect(readFileSync(path.join(dir, 'blocker'), 'utf8')).toBe('x');
    },
  );
});

describe('commit', () => {
  test('commits made while a write is under way all join the one write after it, each settling only once its state or a newer one is on disk', async () => {
    const { store } = await opened();
    const late: string[] = [];
    const settledOnDisk = (n: number) => () => {
      const seq = seqOnDisk();
      if (seq < n) late.push(`commit ${n} resolved with seq ${seq} on disk`);
    };
    const later: Promise<void>[] = [];
    let first = true;
    const { written, overlaps } = watchWrites(() => {
      if (!first) return;
      first = false;
      // The first write has begun: these nine wait for it, then go out together.
      for (let n = 2; n <= 10; n++) later.push(store.commit(nth(n)).then(settledOnDisk(n)));
    });
    await store.commit(nth(1)).then(settledOnDisk(1));
    await Promise.all(later);
    expect(later).toHaveLength(9);
    expect({ written, late, overlaps: overlaps() }).toEqual({
      written: [nth(1), nth(10)],
      late: [],
      overlaps: 0,
    });
    expect(onDisk()).toEqual(nth(10));
  });

  test('a reader never sees a partial file while writes go on continuously', async () => {
    const { store } = await opened();
    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let n = 1; writing; n++) {
        await store.commit(nth(n, n % 2 === 0, n % 3 === 0));
        written = n;
        // A macrotask turn per write, so that a write that never touches the disk cannot
        // starve the reader (and the test's own deadline) of the event loop.
        await nextTurn();
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
          if (!savedStateSchema.safeParse(parsed).success) bad.push(text);
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
    expect(onDisk()).toEqual(nth(written, written % 2 === 0, written % 3 === 0));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  test('a failed write rejects, is logged, and leaves the store unhealthy until a write succeeds; settled() never rejects', async () => {
    const { store, lines } = await opened();
    await expect(store.settled()).resolves.toBeUndefined();
    await store.commit(nth(1));
    breakFolder();
    const failed = outcome(store.commit(nth(2)));
    await expect(store.settled()).resolves.toBeUndefined();
    await expect(failed).resolves.toMatch(/ENOTDIR/);
    expect(store.healthy).toBe(false);
    expect(linesWith(lines, 'could not write the state file')).toEqual([
      expect.objectContaining({ level: LEVEL.error, file }),
    ]);
    // Still unusable: the next one fails too, and the store stays unhealthy.
    await expect(store.commit(nth(3))).rejects.toThrow(/ENOTDIR/);
    expect(store.healthy).toBe(false);

    restoreFolder();
    await store.commit(nth(4));
    expect(store.healthy).toBe(true);
    expect(onDisk()).toEqual(nth(4));
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  // The queued state carries the failed one's effects: writing it would apply them after all.
  test('a failed write voids the batch queued behind it, even when that one could be written', async () => {
    const { store } = await opened();
    let queued: Promise<string> | undefined;
    around = async (real, target, text) => {
      if (queued) return real(target, text);
      // The first write meets a passing fault (say a full disk that then gets room again):
      // its temp file cannot be opened, and by the time the next write runs it could be.
      breakFolder();
      queued = outcome(store.commit(nth(2)));
      try {
        return await real(target, text);
      } finally {
        restoreFolder();
      }
    };
    await expect(store.commit(nth(1))).rejects.toThrow(/ENOTDIR/);
    // nth(2) carries nth(1)'s effects, which were refused: it must not reach the disk.
    await expect(queued).resolves.toBe('an earlier write failed');
    expect(existsSync(file)).toBe(false);
    expect(store.healthy).toBe(false);

    // The next commit is a new batch, queued after the failure: it goes through.
    await store.commit(nth(3));
    expect(store.healthy).toBe(true);
    expect(onDisk()).toEqual(nth(3));
  });

  test('a write past the deadline fails; the next waits for it to end and is voided', async () => {
    const DEADLINE_MS = 150;
    const { store, lines } = await opened(DEADLINE_MS);
    let release: () => void = () => undefined;
    const hung = new Promise<void>((resolve) => (release = resolve));
    let queued: Promise<string> | undefined;
    around = async (real, target, text) => {
      if (!queued) {
        queued = outcome(store.commit(nth(2)));
        await hung;
      }
      return real(target, text);
    };
    const started = performance.now();
    await expect(store.commit(nth(1))).rejects.toThrow(
      `writing the state file took longer than ${DEADLINE_MS} ms`,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
    expect(store.healthy).toBe(false);
    expect(linesWith(lines, 'could not write the state file')).toHaveLength(1);

    // settled() waits for the hung write itself, not just its deadline.
    let isSettled = false;
    const settled = store.settled().then(() => (isSettled = true));
    await nextTurn();
    expect(isSettled).toBe(false);
    release();
    await settled;
    // Its own deadline ran from its commit, so it may have passed already; either way it was
    // refused, and it never reaches the disk (the hung write, already under way, may).
    await expect(queued).resolves.toMatch(/took longer than 150 ms|an earlier write failed/);
    expect(seqOnDisk()).not.toBe(2);

    await store.commit(nth(3));
    expect(store.healthy).toBe(true);
    expect(onDisk()).toEqual(nth(3));
  });
});
