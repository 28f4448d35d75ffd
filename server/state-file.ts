/** The single-node state on disk: a small JSON file replaced whole at every commit (no journal to
 * replay). Commits during a write share the next one, so at most one write is in flight. */
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

import type { UpdatePayload } from '../protocol/events';
import { seedTickerState } from '../protocol/ipc';
import { savedStateSchema } from '../protocol/validation';
import type { Logger } from './logger';
import { PATHS } from './paths';
import type { WriteRequest, WriteResult } from './state-writer';

/** `unannounced`: the prices hold acknowledged buys no `update` has carried yet, so they are not
 * the prices broadcast under `seq`. */
export interface SavedState extends UpdatePayload {
  unannounced: boolean;
}

export interface StateStore {
  /** Resolves once `state` (or a newer one committed after it) is on disk; rejects if not. */
  commit(state: SavedState): Promise<void>;
  /** False from a failed write until a write succeeds again (for /healthz). */
  readonly healthy: boolean;
  /** Resolves once no write is under way (a hung one included). */
  settled(): Promise<void>;
}

export interface StateFile extends StateStore {
  /** Loads the state (an unusable file is moved aside) and writes it back to prove the path is
   * writable; throws if it cannot read or write, so a server that cannot persist never starts. */
  open(): Promise<UpdatePayload>;
}

export interface StateFileOptions {
  path: string;
  logger: Logger;
  /** A write that takes longer than this counts as failed (a hung disk, a path under /proc). */
  deadlineMs?: number;
  /** Replaces `file` with `text` durably (default: writeInThread; tests wrap it). */
  write?: (file: string, text: string) => Promise<void>;
}

const WRITE_DEADLINE_MS = 2_000;

interface Batch {
  state: SavedState;
  /** Failed writes before this batch was queued: a failure since then voids it (see commit). */
  failuresBefore: number;
  done: Promise<void>;
}

export function createStateFile({
  path: file,
  logger,
  deadlineMs = WRITE_DEADLINE_MS,
  write: replace = writeInThread,
}: StateFileOptions): StateFile {
  let healthy = true;
  let failures = 0;
  /** The writes themselves, one after another; never rejects. */
  let writing: Promise<void> = Promise.resolve();
  /** The batch waiting for the write under way to end; later commits join it. */
  let queued: Batch | null = null;

  const within = <T>(promise: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} took longer than ${deadlineMs} ms`)),
        deadlineMs,
      );
    });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
  };

  function commit(state: SavedState): Promise<void> {
    if (queued) {
      queued.state = state;
      return queued.done;
    }
    const batch: Batch = { state, failuresBefore: failures, done: Promise.resolve() };
    // Counted once, at failure or deadline, whichever is first: before the next batch starts.
    let failed = false;
    const fail = (): void => {
      if (!failed) failures++;
      failed = true;
    };
    const write = writing.then(async () => {
      if (queued === batch) queued = null;
      // Each state includes the ones before it: after a failed write, this would apply it anyway.
      if (failures !== batch.failuresBefore) throw new Error('an earlier write failed');
      await replace(file, `${JSON.stringify(batch.state)}\n`);
    });
    // The next write waits for this one to end, even past its deadline: a late rename must
    // never land on top of a newer state.
    writing = write.catch(fail);
    batch.done = within(write, 'writing the state file').then(
      () => {
        healthy = true;
      },
      (error: unknown) => {
        fail();
        healthy = false;
        logger.error({ err: error, file }, 'could not write the state file');
        throw error;
      },
    );
    queued = batch;
    return batch.done;
  }

  /** Moves a file that cannot be used out of the way, so nothing overwrites it. */
  async function setAside(problem: string): Promise<void> {
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(file, aside);
    logger.error({ file, movedTo: aside, problem }, 'state file unusable; starting from the seed');
  }

  async function load(): Promise<SavedState | null> {
    let text: string;
    try {
      text = await within(readFile(file, 'utf8'), 'reading the state file');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`cannot read the state file ${file}: ${messageOf(error)}`);
      logger.info({ file }, 'no state file yet; starting from the seed prices');
      return null;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      await setAside(text.length === 0 ? 'empty' : 'not JSON');
      return null;
    }
    const parsed = savedStateSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      await setAside(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
      return null;
    }
    return parsed.data;
  }

  return {
    get healthy() {
      return healthy;
    },
    commit,
    settled: () => writing,
    async open() {
      try {
        await within(mkdir(path.dirname(file), { recursive: true }), 'creating the state folder');
        const saved = await load();
        const state = saved ? announced(saved) : seedTickerState(Date.now());
        if (saved)
          logger.info({ file, seq: state.seq, running: state.running }, 'resumed saved state');
        await commit({ ...state, unannounced: false });
        return state;
      } catch (error) {
        throw new Error(`state file ${file}: ${messageOf(error)}`);
      }
    },
  };
}

/** Buys acknowledged but never broadcast before a crash get a seq of their own, so no client
 * ever sees two prices under one seq. */
function announced({ unannounced, ...state }: SavedState): UpdatePayload {
  return unannounced ? { ...state, seq: state.seq + 1, ts: Date.now() } : state;
}

let writer: { worker: Worker; waiting: ((result: WriteResult) => void)[] } | null = null;

/** Hands the write to the writer thread (one per process, started at the first write). */
export function writeInThread(file: string, text: string): Promise<void> {
  if (!writer) {
    const worker = new Worker(PATHS.stateWriter);
    const started = { worker, waiting: [] as ((result: WriteResult) => void)[] };
    worker.on('message', (result: WriteResult | { ok?: never }) => {
      // Under `node --watch` (npm run dev) Node's own messages arrive on this port too.
      if (typeof result.ok !== 'boolean') return;
      started.waiting.shift()?.(result);
      // An idle thread must not keep the process alive.
      if (started.waiting.length === 0) worker.unref();
    });
    const gone = (error: unknown): void => {
      if (writer === started) writer = null;
      for (const answer of started.waiting.splice(0))
        answer({ ok: false, error: `the writer thread stopped: ${messageOf(error)}` });
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(`exit code ${code}`));
    writer = started;
  }
  const { worker, waiting } = writer;
  // A write under way keeps the process alive, as a write on the main thread would.
  worker.ref();
  return new Promise<void>((resolve, reject) => {
    waiting.push((result) =>
      result.ok ? resolve() : reject(Object.assign(new Error(result.error), { code: result.code })),
    );
    worker.postMessage({ file, text } satisfies WriteRequest);
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
