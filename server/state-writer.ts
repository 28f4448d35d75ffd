/** The state file's writer thread: its system calls run back to back, not each after a turn. */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parentPort, type MessagePort } from 'node:worker_threads';

/** `port` gets null once `file` holds `text`, or the error's message. */
export interface WriteRequest {
  file: string;
  text: string;
  port: MessagePort;
}

parentPort?.on('message', ({ file, text, port }: WriteRequest) => {
  try {
    // Temp file, fsync, rename, fsync of the folder: the file is always one whole state.
    writeFileSync(`${file}.tmp`, text, { flush: true });
    renameSync(`${file}.tmp`, file);
    // The rename is durable only once the folder is; Windows cannot open a folder to sync it.
    if (process.platform !== 'win32') {
      const folder = openSync(path.dirname(file), 'r');
      try {
        fsyncSync(folder);
      } finally {
        closeSync(folder);
      }
    }
    port.postMessage(null);
  } catch (error) {
    port.postMessage((error as Error).message);
  }
  port.close();
});
