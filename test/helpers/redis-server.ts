/** A throwaway redis-server on a free loopback port for the cluster tests: Debian's `redis-server`,
 * data in a temporary folder, append-only so that a restart keeps the state as in production. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { missingTool } from './required-tool';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGTERM (Redis saves and exits), and wait for it. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder, after stop(). */
  restart(): Promise<void>;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

/** The redis-server binary (REDIS_SERVER overrides), or null (see missingTool) if there is none. */
export function findRedisServer(): string | null {
  const candidate = process.env['REDIS_SERVER'] ?? 'redis-server';
  const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
  if (probe.status === 0) return candidate;
  return missingTool('cluster tests', 'No redis-server found (`apt-get install redis-server`)');
}

/** A port nothing listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

export async function startRedis(binary: string): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-redis-'));
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    // Append-only, every write synced: a restart keeps the state, as in production.
    const config = { port, bind: '127.0.0.1', dir, save: '', appendonly: 'yes', logfile: '' };
    const args = Object.entries({ ...config, appendfsync: 'always' }).flatMap(([key, value]) => [
      `--${key}`,
      String(value),
    ]);
    const started = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start on ${port}:\n${output}`)),
        10_000,
      );
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      started.stdout?.on('data', onData);
      started.stderr?.on('data', onData);
      started.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${String(code)}:\n${output}`));
      });
    });
  };

  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null) return;
    if (running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop,
    restart: launch,
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
