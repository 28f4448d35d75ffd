/** The state file's writer thread: the replace's system calls run back to back here instead of
 * each waiting for a turn of a busy event loop. Each request is answered on the port it carries. */
import { closeSync, fdatasyncSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';
import { parentPort, type MessagePort } from 'node:worker_threads';

/** `port` gets null once `file` holds `text`, or the error's message. */
export interface WriteRequest {
  file: string;
  text: string;
  port: MessagePort;
}

function withFd(file: string, flags: string, use: (fd: number) => void): void {
  const fd = openSync(file, flags);
  try {
    use(fd);
  } finally {
    closeSync(fd);
  }
}

parentPort?.on('message', ({ file, text, port }: WriteRequest) => {
  try {
    // Temp file, fsync, rename, fsync of the folder: the file is always one whole state.
    withFd(`${file}.tmp`, 'w', (fd) => {
      writeSync(fd, text);
      fdatasyncSync(fd);
    });
    renameSync(`${file}.tmp`, file);
    // The rename is durable only once the folder is; Windows cannot open a folder to sync it.
    if (process.platform !== 'win32') withFd(path.dirname(file), 'r', fsyncSync);
    port.postMessage(null);
  } catch (error) {
    port.postMessage((error as Error).message);
  }
  port.close();
});
