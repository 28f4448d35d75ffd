/** The state file against real files in a temporary folder; writes are watched through the
 * store's `write` seam around the real writer. */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import fs, { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { tickerState } from '../../protocol/ipc';
import { LAST_SEQ } from '../../protocol/stocks';
import { savedStateSchema, type SavedState } from '../../protocol/validation';
import { createStateFile, stuck, writeInThread } from '../../server/state-file';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';
import { decayAll, SEED, stateOf, T0, withBuy } from '../helpers/prices';

type Write = (file: string, text: string) => Promise<void>;

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'forkcast-state-'));
  file = path.join(dir, 'state.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A store on `at`; `around` stands between it and the real writer. */
function create({ at = file, deadlineMs = 2_000, around = (real: Write) => real } = {}) {
  const { logger, lines } = capturingLogger();
  const write = around(writeInThread);
  const store = createStateFile({ path: at, logger, deadlineMs, write, exclusive: false });
  return { store, lines };
}

/** A distinct, valid state per n: n ticks of decay from the seed, seq n. */
function nth(n: number, running = true, unannounced = false): SavedState {
  let stocks = SEED.map((stock) => ({ ...stock }));
  for (let i = 0; i < n; i++) stocks = decayAll(stocks);
  return { ...stateOf({ stocks, running, seq: n, ts: T0 + n }), unannounced };
}

/** For a commit nobody awaits yet, so that its rejection is handled. */
const messageOf = (error: Error) => error.message;

const onDisk = (): unknown => JSON.parse(readFileSync(file, 'utf8'));
const seedState = { ...stateOf(), ts: expect.any(Number), unannounced: false };

describe('open', () => {
  test('a missing file: the seed prices, logged, and written at once, folders and all; what commit then writes, exact to the bit, a new store opens and writes back byte for byte', async () => {
    const nested = path.join(dir, 'a', 'b', 'state.json');
    const { store, lines } = create({ at: nested });
    const before = Date.now();
    const seeded = await store.open();
    expect(seeded).toEqual(seedState);
    expect(seeded.ts).toBeGreaterThanOrEqual(before);
    expect(readFileSync(nested, 'utf8')).toBe(`${JSON.stringify(seeded)}\n`);
    const seeding = linesWith(lines, 'no state file yet; starting from the seed prices');
    expect(seeding).toMatchObject([{ level: LEVEL.info, file: nested }]);
    const state = { ...nth(7), stocks: withBuy(nth(7).stocks, 'Facebook', 3), seq: LAST_SEQ };
    await store.commit(state);
    const text = `${JSON.stringify(state)}\n`;
    expect(readFileSync(nested, 'utf8')).toBe(text);
    const again = create({ at: nested });
    await expect(again.store.open()).resolves.toEqual(state);
    expect(readFileSync(nested, 'utf8')).toBe(text);
    expect(linesWith(again.lines, 'resumed saved state')).toEqual([
      expect.objectContaining({ level: LEVEL.info, file: nested, seq: LAST_SEQ, running: true }),
    ]);
  });

  test('an unannounced buy becomes an update of its own: seq + 1 (exact even at the last seq), ts now, the prices kept, last in the history', async () => {
    const stocks = withBuy(nth(9).stocks, 'Microsoft');
    const saved = { ...nth(9, false, true), stocks, history: [nth(8), nth(9)].map(tickerState) };
    writeFileSync(file, JSON.stringify(saved));
    const before = Date.now();
    const state = await create().store.open();
    const update = { stocks, running: false, seq: 10, ts: expect.any(Number) };
    const history = [...saved.history, update];
    expect(state).toEqual({ ...saved, ...update, unannounced: false, history });
    expect(state.ts).toBeGreaterThanOrEqual(before);
    // Written back announced, so a second start does not count the same buy again.
    expect(onDisk()).toEqual(state);

    // With no seq left, they stay unannounced rather than take a seq the next start refuses.
    writeFileSync(file, JSON.stringify({ ...saved, seq: LAST_SEQ }));
    const spent = { ...saved, seq: LAST_SEQ, unannounced: true };
    await expect(create().store.open()).resolves.toEqual(spent);
    await expect(create().store.open()).resolves.toEqual(spent);
  });

  // Which contents are a state is validation.test.ts's; here, what open() does with one that is not.
  const goodText = JSON.stringify(nth(3));
  test.each([
    ['empty', '', 'empty'],
    ['torn in the middle', goodText.slice(0, Math.floor(goodText.length / 2)), 'JSON'],
    ['null', 'null', ': '],
  ])(
    'a file that is %s is moved aside with its bytes, logged, and the seed used',
    async (_what, text, said) => {
      writeFileSync(file, text);
      const { store, lines } = create();
      const state = await store.open();
      expect(state).toEqual(seedState);
      expect(onDisk()).toEqual(state);
      const aside = readdirSync(dir).filter((name) => name !== 'state.json');
      expect(aside).toEqual([expect.stringMatching(/^state\.json\.corrupt-\d{4}-[\dTZ-]+$/)]);
      const movedTo = path.join(dir, aside[0] ?? '');
      expect(readFileSync(movedTo, 'utf8')).toBe(text);
      const logged = linesWith(lines, 'state file unusable; starting from the seed');
      const problem = expect.stringContaining(said);
      expect(logged).toMatchObject([{ level: LEVEL.error, file, movedTo, problem }]);
    },
  );

  // A path under /proc/self (which hangs): main.test.ts's "a state file under /proc", in a process.
  test.each([
    ['a folder', '.', 'not a regular file'],
    ['a link', 'link', 'not a regular file'],
    ['a FIFO', 'fifo', 'not a regular file'],
    ['under a file', path.join('blocker', 'state.json'), '.*(EEXIST|ENOTDIR)'],
    ...(process.platform === 'linux'
      ? [['directly in /proc', '/proc/forkcast-test.json', '']]
      : []),
  ])(
    'a path that is %s: open() rejects within the deadline naming the file, and moves nothing',
    async (_what, relative, why) => {
      writeFileSync(path.join(dir, 'blocker'), 'x');
      await fs.symlink('blocker', path.join(dir, 'link'));
      execFileSync('mkfifo', [path.join(dir, 'fifo')]);
      const at = path.resolve(dir, relative);
      const started = performance.now();
      await expect(create({ at, deadlineMs: 300 }).store.open()).rejects.toThrow(
        new RegExp(`^state file ${at}: ${why}`),
      );
      expect(performance.now() - started).toBeLessThan(300 + 1_000);
      expect(readdirSync(dir).sort()).toEqual(['blocker', 'fifo', 'link']);
      expect(readFileSync(path.join(dir, 'blocker'), 'utf8')).toBe('x');
      const [link, fifo] = ['link', 'fifo'].map((name) => lstatSync(path.join(dir, name)));
      expect([link?.isSymbolicLink(), fifo?.isFIFO()]).toEqual([true, true]);
    },
  );
});

// What main asks before exit(), which would wait for good for a thread a hung disk holds.
test('stuck: whether the last timed operation, past its deadline or not, is still not done a while on', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const { store } = create({
    deadlineMs: 50,
    around: (real) => (at, text) => held.then(() => real(at, text)),
  });
  await expect(store.open()).rejects.toThrow('writing the state file took longer than 50 ms');
  expect(await stuck(100)).toBe(true);
  release();
  expect(await stuck(5_000)).toBe(false);
});

// Deleted (or taken over after a stall): from then on another server may own the file.
test('a lock taken away is logged at once and fails every commit from then on, health degraded though a write under way lands', async () => {
  const { logger, lines } = capturingLogger();
  let hold: Promise<unknown> = Promise.resolve();
  const write: Write = (at, text) => hold.then(() => writeInThread(at, text));
  const store = createStateFile({ path: file, logger, write, deadlineMs: 5_000 });
  await store.open();
  const lost = 'lost the state file lock; no more writes';
  hold = lines.waitFor((line) => line['msg'] === lost, { timeoutMs: 5_000, what: lost });
  const underWay = store.commit(nth(1));
  rmSync(`${file}.lock`, { recursive: true });
  await underWay;
  expect(store.healthy).toBe(false);
  await expect(store.commit(nth(2))).rejects.toThrow(/ENOENT/);
  expect(onDisk()).toEqual(nth(1));
});

describe('commit', () => {
  test('commits made while a write is under way all join the one write after it, each settling only once its state or a newer one is on disk', async () => {
    const written: unknown[] = [];
    const late: string[] = [];
    const later: Promise<void>[] = [];
    let inFlight = false;
    const settledOnDisk = (n: number) => () => {
      const seq = savedStateSchema.parse(onDisk()).seq;
      if (seq < n) late.push(`commit ${n} resolved with seq ${seq} on disk`);
    };
    const { store } = create({
      around: (real) => async (target, text) => {
        if (inFlight) late.push('two writes at once');
        inFlight = true;
        // The first write has begun: these nine wait for it, then go out together.
        if (written.length === 1)
          for (let n = 2; n <= 10; n++) later.push(store.commit(nth(n)).then(settledOnDisk(n)));
        await real(target, text);
        written.push(JSON.parse(text));
        inFlight = false;
      },
    });
    await store.open();
    await store.commit(nth(1)).then(settledOnDisk(1));
    await Promise.all(later);
    expect(later).toHaveLength(9);
    expect({ written: written.slice(1), late }).toEqual({ written: [nth(1), nth(10)], late: [] });
  });

  test('a reader never sees a partial file while writes go on continuously, which leave no fd open', async () => {
    const { store } = create();
    await store.open();
    // The writer thread is this process's: a folder fd left open per write ends in EMFILE.
    const fds = () => (process.platform === 'linux' ? readdirSync('/proc/self/fd').length : 0);
    const openFds = fds();
    const texts: string[] = [];
    let [n, stopped] = [0, false];
    const busy = () => n < 30 || texts.length < 300;
    const writer = (async () => {
      while (busy()) {
        n++;
        await store.commit(nth(n, n % 2 === 0, n % 3 === 0));
        // A macrotask turn per write, so that the reader gets the event loop too.
        await new Promise((resolve) => setImmediate(resolve));
      }
    })().finally(() => (stopped = true));
    // Thread-pool reads, concurrent with the writer's rename; a failed write stops them.
    while (busy() && !stopped)
      texts.push(...(await Promise.all([1, 2, 3, 4].map(() => readFile(file, 'utf8')))));
    await writer;
    // A torn file lacks the final newline, or is not a state.
    const whole = (text: string) =>
      text.endsWith('}\n') && savedStateSchema.safeParse(JSON.parse(text)).success;
    expect(texts.filter((text) => !whole(text)).slice(0, 3)).toEqual([]);
    expect(onDisk()).toEqual(nth(n, n % 2 === 0, n % 3 === 0));
    expect(readdirSync(dir)).toEqual(['state.json']);
    // Not equal: a leak is one fd a write, and this process may open one of its own meanwhile.
    expect(fds() - openFds).toBeLessThan(5);
  });

  test('a link planted where the temp file goes is replaced, never written through', async () => {
    const { store } = create();
    await store.open();
    const victim = path.join(dir, 'victim');
    writeFileSync(victim, 'precious');
    await fs.symlink(victim, `${file}.tmp`);
    await store.commit(nth(1));
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect([lstatSync(file).isFile(), onDisk()]).toEqual([true, nth(1)]);
  });

  // The queued state carries the failed one's effects: writing it would apply them after all.
  test('a write that fails or passes its deadline rejects, is logged, voids the batch queued behind it (even one that could be written) and leaves the store unhealthy until a write succeeds; settled() waits for a hung write and never rejects', async () => {
    let release: () => void = () => undefined;
    const hung = new Promise<void>((resolve) => (release = resolve));
    const queued: Promise<string | void>[] = [];
    const { store, lines } = create({
      deadlineMs: 1_000,
      around: (real) => async (target, text) => {
        const { seq } = savedStateSchema.parse(JSON.parse(text));
        if (seq === 1 || seq === 4) queued.push(store.commit(nth(seq + 1)).catch(messageOf));
        if (seq === 4) await hung;
        if (seq !== 1) return real(target, text);
        // A full disk that gets room again: the folder becomes a file (ENOTDIR), then a folder.
        rmSync(dir, { recursive: true, force: true });
        writeFileSync(dir, 'not a folder');
        return real(target, text).finally(async () => {
          rmSync(dir);
          await fs.mkdir(dir);
        });
      },
    });
    await store.open();
    const failed = store.commit(nth(1)).catch(messageOf);
    await expect(store.settled()).resolves.toBeUndefined();
    await expect(failed).resolves.toMatch(/ENOTDIR/);
    await expect(queued[0]).resolves.toBe('an earlier write failed');
    expect([store.healthy, readdirSync(dir)]).toEqual([false, []]);
    // The next commit is a new batch, queued after the failure: it goes through.
    await store.commit(nth(3));
    expect([store.healthy, onDisk()]).toEqual([true, nth(3)]);

    const started = performance.now();
    await expect(store.commit(nth(4))).rejects.toThrow(
      'writing the state file took longer than 1000 ms',
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(995);
    expect(store.healthy).toBe(false);
    let isSettled = false;
    const settled = store.settled().then(() => (isSettled = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(isSettled).toBe(false);
    release();
    await settled;
    // Refused by its own deadline or the failure, it never reaches the disk (the hung write may).
    await expect(queued[1]).resolves.toMatch(/took longer than 1000 ms|an earlier write failed/);
    expect(onDisk()).not.toMatchObject({ seq: 5 });
    const logged = expect.objectContaining({ level: LEVEL.error, file });
    expect(linesWith(lines, 'could not write the state file')).toEqual(Array(4).fill(logged));
    await store.commit(nth(6));
    expect([store.healthy, onDisk()]).toEqual([true, nth(6)]);
  });
});

// A disk failing or hanging under lstat or read: open() fails, and never puts the seed over the file.
test.each([
  ['lstat', 'fails', () => Promise.reject(Object.assign(new Error('EIO'), { code: 'EIO' })), /EIO/],
  ['lstat', 'hangs', () => new Promise(() => undefined), /took longer than 300 ms/],
  ['readFile', 'hangs', () => new Promise(() => undefined), /reading .* longer than 300 ms/],
] as const)(
  'a state file whose %s %s: open() rejects, the file untouched',
  async (call, _how, fake, error) => {
    const saved = JSON.stringify({ ...stateOf({ seq: 42, running: true }), unannounced: false });
    writeFileSync(file, saved);
    const spy = jest.spyOn(fs, call).mockImplementation(fake as never);
    await expect(create({ deadlineMs: 300 }).store.open()).rejects.toThrow(error);
    spy.mockRestore();
    expect(readFileSync(file, 'utf8')).toBe(saved);
  },
);
