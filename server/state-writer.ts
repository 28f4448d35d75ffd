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

function withFd(file: string, flags: string, use: (fd: number) => void): void {
  const fd = openSync(file, flags);
  try {
    use(fd);
  } finally {
    closeSync(fd);
  }
}

parentPort?.on('message', ({ file, text }: WriteRequest) => {
  try {
    // Temp file, fsync, rename, fsync of the folder: the file is always one whole state.
    withFd(`${file}.tmp`, 'w', (fd) => {
      writeSync(fd, text);
      fdatasyncSync(fd);
    });
    renameSync(`${file}.tmp`, file);
    // The rename is durable only once the folder is; Windows cannot open a folder to sync it.
    if (process.platform !== 'win32') withFd(path.dirname(file), 'r', fsyncSync);
    parentPort?.postMessage({ ok: true } satisfies WriteResult);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    parentPort?.postMessage({ ok: false, error: message, code } satisfies WriteResult);
  }
});
