/** The single-node state on disk: a small JSON file replaced whole at every commit (no journal to
 * replay). Commits during a write share the next one, so at most one write is in flight. */
import { lstat, mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from 'pino';
import { Piscina } from 'piscina';
import { lock } from 'proper-lockfile';

import { seedTickerState, tickerState } from '../protocol/ipc';
import { LAST_SEQ } from '../protocol/stocks';
import { parseJson, savedStateSchema, type SavedState } from '../protocol/validation';
import { PATHS } from './paths';
import { historyTo } from './ticker-host';

export interface StateStore {
  /** Resolves once `state` (or a newer one committed after it) is saved; rejects if not. */
  commit(state: SavedState): Promise<void>;
  /** False from a failed write until a write succeeds again (for /healthz). */
  readonly healthy: boolean;
  /** Slower than a broadcast (a disk): the supervisor may send an update while it is saved. */
  readonly slow?: boolean;
  /** Resolves once no write is under way (a hung one included). */
  settled(): Promise<void>;
}

/** One server per file, or two number seqs from one base. A dead holder's lock is stale in 2 s (a
 * live one's goes at its exit); one taken over or deleted fails every commit from then on. */
const LOCK = { realpath: false, stale: 2e3, retries: { retries: 25, factor: 1, minTimeout: 200 } };

export function createStateFile({
  path: file,
  logger,
  deadlineMs = 2_000,
  write: replace = writeInThread,
  exclusive = true,
}: {
  path: string;
  logger: Logger;
  /** A write that takes longer than this counts as failed (a hung disk, a path under /proc). */
  deadlineMs?: number;
  /** Replaces `file` with `text` durably (default: writeInThread). */
  write?: (file: string, text: string) => Promise<void>;
  exclusive?: boolean;
}) {
  /** Failed writes so far: a batch queued before a failure is void. */
  let failures = 0;
  /** The writes themselves, one after another; never rejects. */
  let writing: Promise<void> = Promise.resolve();
  /** The batch waiting for the write under way to end; later commits join it. */
  let queued: { state: SavedState; done: Promise<void> } | null = null;

  let lost = false;
  const timed = <T>(promise: Promise<T>, what: string): Promise<T> =>
    within((last = promise), deadlineMs, `${what} took longer than ${deadlineMs} ms`);

  function commit(state: SavedState): Promise<void> {
    if (queued) {
      queued.state = state;
      return queued.done;
    }
    const batch = { state, done: Promise.resolve() };
    const failuresBefore = failures;
    const write = writing.then(() => {
      if (queued === batch) queued = null;
      // Each state includes the ones before it: after a failed write, this would apply it anyway.
      if (failures !== failuresBefore) throw new Error('an earlier write failed');
      return replace(file, `${JSON.stringify(batch.state)}\n`);
    });
    // The next write waits for this one even past its deadline: a late rename must not land last.
    writing = write.catch(() => void failures++);
    batch.done = timed(write, 'writing the state file').then(
      () => void (store.healthy = !lost),
      (error: unknown) => {
        failures++;
        store.healthy = false;
        logger.error({ err: error, file }, 'could not write the state file');
        throw error;
      },
    );
    queued = batch;
    return batch.done;
  }

  async function load(): Promise<SavedState | null> {
    const kind = await timed(lstat(file), 'reading the state file').catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        logger.info({ file }, 'no state file yet; starting from the seed prices');
      },
    );
    if (!kind) return null;
    // A folder, link, FIFO or device (STATE_FILE=/dev/null) is not ours to read or set aside.
    if (!kind.isFile()) throw new Error('not a regular file');
    const text = await timed(readFile(file, 'utf8'), 'reading the state file');
    const parsed = parseJson(savedStateSchema, 'state file', text);
    if (parsed.ok) return parsed.value;
    const problem = parsed.error;
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(file, aside);
    logger.error({ file, movedTo: aside, problem }, 'state file unusable; starting from the seed');
    return null;
  }

  const store = {
    healthy: true,
    commit,
    slow: true,
    settled: () => writing,
    /** Loads the state and writes it back, or throws: a server that cannot persist never starts. */
    async open(): Promise<SavedState> {
      try {
        await timed(mkdir(path.dirname(file), { recursive: true }), 'creating the state folder');
        const onCompromised = (error: Error) => {
          logger.error({ err: error, file }, 'lost the state file lock; no more writes');
          [lost, store.healthy, replace] = [true, false, () => Promise.reject(error)];
        };
        if (exclusive) await lock(file, { ...LOCK, onCompromised });
        const saved = await load();
        if (saved)
          logger.info({ file, seq: saved.seq, running: saved.running }, 'resumed saved state');
        const state = saved ?? { ...seedTickerState(Date.now()), unannounced: false };
        // Acked buys no update carried get a seq of their own (one seq, one price), if one is left.
        if (state.unannounced && state.seq < LAST_SEQ) {
          Object.assign(state, { seq: state.seq + 1, ts: Date.now(), unannounced: false });
          state.history = historyTo(state.history ?? [], tickerState(state));
        }
        await commit({ ...state });
        return state;
      } catch (error) {
        throw new Error(`state file ${file}: ${(error as Error).message}`);
      }
    },
  };
  return store;
}

let last: Promise<unknown> = Promise.resolve();
/** Is the last timed operation of any store still not done `ms` on? exit() would wait for good. */
export const stuck = (ms: number): Promise<boolean> =>
  Promise.race([last.catch(() => undefined).then(() => false), sleep(ms, true)]);

/** `promise`, or `message` thrown after `ms`; unreferenced: the work it waits on keeps us alive. */
export const within = <T>(promise: Promise<T>, ms: number, message: string): Promise<T> =>
  Promise.race([
    promise,
    sleep(Math.max(0, ms), null, { ref: false }).then(() => Promise.reject(new Error(message))),
  ]);

/** One thread, started at the first write; idle, it lets the process exit. */
const writer = new Piscina({
  filename: PATHS.stateWriter,
  minThreads: 0,
  maxThreads: 1,
  idleTimeout: Infinity,
});

export const writeInThread = (file: string, text: string): Promise<void> =>
  writer.run({ file, text });
