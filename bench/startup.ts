/** Start-up and size figures: ticker fork to ready, server start to listening, bundle size. */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { seedTickerState, type ParentMessage } from '../protocol/ipc';
import { findClientAssets } from '../server/client-assets';
import { PRODUCT_DIST as DIST, startServer } from './servers';

export interface StartupFigures {
  /** fork() of the compiled ticker child until its `ready` message, per run. */
  childForkMs: number[];
  /** `node dist/server/main.js` spawned until it logs that it listens, per run. */
  serverStartMs: number[];
  /** gzip -9 bytes of the client's JavaScript, by file. */
  bundleGzipBytes: Record<string, number>;
}

export async function measureStartup(runs: number, cpus: string | null): Promise<StartupFigures> {
  const childForkMs: number[] = [];
  const serverStartMs: number[] = [];
  for (let i = 0; i < runs; i++) childForkMs.push(await forkTicker());
  for (let i = 0; i < runs; i++) {
    const server = await startServer('forkcast', { tickMs: 1000, cpus });
    serverStartMs.push(server.startedInMs);
    await server.stop();
  }
  const bundleGzipBytes: Record<string, number> = {};
  // Keyed main.js, not main-T5R62BU3.js, so that runs of different builds compare.
  for (const [entry, file] of Object.entries(findClientAssets(path.join(DIST, 'client')))) {
    const bytes = gzipSync(readFileSync(path.join(DIST, 'client', file)), { level: 9 }).length;
    bundleGzipBytes[`${entry}${path.extname(file)}`] = bytes;
  }
  return { childForkMs, serverStartMs, bundleGzipBytes };
}

function forkTicker(): Promise<number> {
  const began = performance.now();
  const child = fork(path.join(DIST, 'ticker', 'main.js'), [], {
    execArgv: [],
    stdio: 'ignore',
    serialization: 'json',
  });
  return new Promise((resolve, reject) => {
    child.once('message', () => {
      const ms = performance.now() - began;
      child.disconnect();
      child.once('exit', () => resolve(ms));
    });
    child.once('error', reject);
    child.send({
      type: 'init',
      state: seedTickerState(Date.now()),
      tickMs: 1000,
      unannounced: false,
    } satisfies ParentMessage);
  });
}
