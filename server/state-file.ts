/**
 * Keeps the ticker's state (prices, running, seq) in a small JSON file so that a restarted
 * server carries on where the last one stopped. Writes are atomic (temp file, fsync, rename):
 * a crash mid-write leaves the previous file, never a torn one.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import writeFileAtomic from 'write-file-atomic';

import type { TickerState } from '../protocol/ipc';
import { tickerStateSchema } from '../protocol/validation';
import type { Logger } from './logger';

export interface StateStore {
  /** Remember this state; it is written soon (throttled), not necessarily now. */
  save(state: TickerState): void;
  /** Write what is pending now and wait for it. */
  flush(): Promise<void>;
}

export interface StateFile extends StateStore {
  /** The saved state, or null (logged) when the file is missing, empty, torn or invalid. */
  load(): Promise<TickerState | null>;
}

export interface StateFileOptions {
  path: string;
  logger: Logger;
  /** At most one write per this many milliseconds while updates keep coming. */
  throttleMs?: number;
}

export function createStateFile({
  path: file,
  logger,
  throttleMs = 1_000,
}: StateFileOptions): StateFile {
  let pending: TickerState | null = null;
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();
  let lastWriteAt = Number.NEGATIVE_INFINITY;
  let dirReady = false;

  async function write(state: TickerState): Promise<void> {
    if (!dirReady) {
      await mkdir(path.dirname(file), { recursive: true });
      dirReady = true;
    }
    await writeFileAtomic(file, `${JSON.stringify(state)}\n`, { fsync: true });
  }

  /** Writes go one after another, each with the newest state at the moment it starts. */
  function writeNow(): Promise<void> {
    if (timer) clearTimeout(timer);
    timer = null;
    writing = writing.then(async () => {
      const state = pending;
      pending = null;
      if (!state) return;
      lastWriteAt = Date.now();
      try {
        await write(state);
      } catch (error) {
        // A full disk must not take the ticker down; the next change tries again.
        logger.error({ err: error, file }, 'could not write the state file');
      }
    });
    return writing;
  }

  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          logger.info({ file }, 'no state file yet; starting from the seed prices');
        } else {
          logger.error(
            { err: error, file },
            'could not read the state file; starting from the seed prices',
          );
        }
        return null;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        logger.warn(
          { file, bytes: text.length },
          'state file is empty or torn; starting from the seed prices',
        );
        return null;
      }
      const parsed = tickerStateSchema.safeParse(json);
      if (!parsed.success) {
        logger.warn(
          { file, problem: parsed.error.issues[0]?.message },
          'state file is not a valid state; starting from the seed prices',
        );
        return null;
      }
      logger.info(
        { file, seq: parsed.data.seq, running: parsed.data.running },
        'resumed saved state',
      );
      return parsed.data;
    },
    save(state) {
      pending = state;
      if (timer) return;
      const wait = Math.max(0, lastWriteAt + throttleMs - Date.now());
      timer = setTimeout(() => void writeNow(), wait);
    },
    flush() {
      return writeNow();
    },
  };
}
