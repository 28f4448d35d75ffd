/** The state file's writer, on a piscina thread so that its system calls never wait for the busy
 * main thread. Temp file, fsync, rename, fsync of the folder: the file is always one whole state. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export default function replace({ file, text }: { file: string; text: string }): void {
  // Created afresh (O_EXCL): a link planted at the temp path is removed, never written through.
  rmSync(`${file}.tmp`, { force: true });
  writeFileSync(`${file}.tmp`, text, { flush: true, flag: 'wx' });
  renameSync(`${file}.tmp`, file);
  // The rename is durable only once the folder is; Windows cannot open a folder to sync it.
  if (process.platform === 'win32') return;
  const folder = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(folder);
  } finally {
    closeSync(folder);
  }
}
