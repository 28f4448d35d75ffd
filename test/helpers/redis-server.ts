/** A throwaway redis-server (Debian's) on a free loopback port, its data in a temporary folder. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { withDeadline } from './recorder';
import { missingTool } from './required-tool';

export type RedisServer = Awaited<ReturnType<typeof startRedis>>;

/** The redis-server binary (REDIS_SERVER overrides), or null (see missingTool) if there is none. */
export function findRedisServer(suite = 'cluster tests'): string | null {
  const candidate = process.env['REDIS_SERVER'] ?? 'redis-server';
  if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  return missingTool(suite, 'No redis-server found (`apt-get install redis-server`)');
}

/** `count` ports nothing listens on right now, picked by the OS while all are held: no two alike. */
export async function freePorts(count = 1): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer().listen(0, '127.0.0.1'));
  await Promise.all(servers.map((server) => once(server, 'listening')));
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** stop() is a SIGTERM by default (Redis saves and exits); restart() uses the same port and data
 * folder, which keeps every write (appendfsync always) even after a SIGKILL. */
export async function startRedis(binary: string) {
  const [port] = await freePorts();
  const dir = mkdtempSync(path.join(tmpdir(), 'forkcast-redis-'));
  // The configuration comes on stdin ("-").
  const config = `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsave ""\nappendonly yes\nappendfsync always\n`;
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    const started = (child = spawn(binary, ['-'], { stdio: ['pipe', 'pipe', 'inherit'] }));
    started.stdin?.end(config);
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      started.stdout?.on('data', (chunk: Buffer) => {
        if ((output += chunk.toString()).includes('Ready to accept connections')) resolve();
      });
      started.once('exit', (code) => reject(new Error(`redis-server exited ${code}:\n${output}`)));
    });
    await withDeadline(ready, 10_000, `redis-server on ${port}`);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child?.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    // A paused (SIGSTOP) server takes a SIGTERM only once it runs again.
    child.kill(signal);
    child.kill('SIGCONT');
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop,
    /** SIGSTOP: connections stay open, and what is sent on them waits unanswered. */
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    restart: launch,
    dispose: () => stop().then(() => rmSync(dir, { recursive: true, force: true })),
  };
}
