/** The state file's writer thread: the replace's system calls run back to back here instead of
 * each waiting for a turn of a busy event loop. Requests are answered in the order they came. */
import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';

export interface WriteRequest {
  file: string;
  text: string;
}
/** `code`: the errno name (ENOSPC, ENOTDIR), as a failed fs call on the main thread has it. */
export type WriteResult = { ok: true } | { ok: false; error: string; code?: string | undefined };

/** Temp file, fsync, rename, fsync of the folder: the file is always one whole state. */
function replace({ file, text }: WriteRequest): void {
  const temp = `${file}.tmp`;
  const fd = openSync(temp, 'w');
  try {
    writeSync(fd, text);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, file);
  // The rename is durable only once the folder is; Windows cannot open a folder to sync it.
  if (process.platform === 'win32') return;
  const folder = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}

parentPort?.on('message', (request: WriteRequest) => {
  let result: WriteResult = { ok: true };
  try {
    replace(request);
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    result = { ok: false, error: error instanceof Error ? error.message : String(error), code };
  }
  parentPort?.postMessage(result);
});
