import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');

export interface ServerProcess {
  url: string;
  process: ChildProcess;
  /** SIGTERM, then wait for the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the built server (dist/server/main.js) as its own process on a free loopback port. */
export async function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'server', 'main.js')], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const lines = createInterface({ input: child.stdout });

  const url = await new Promise<string>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('server did not start in 15 s')), 15_000);
    child.once('exit', (code) =>
      reject(new Error(`server exited with ${String(code)} before listening`)),
    );
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'forkcast listening' && entry.url) {
          clearTimeout(deadline);
          resolve(entry.url);
        }
      } catch {
        // Not a log line; ignore.
      }
    });
  });

  return {
    url,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
