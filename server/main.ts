/** The entry: config → host → app → signals. createApp() wires; tests run it in-process. */
import path from 'node:path';

import { pino } from 'pino';

import { createApp, type AppConfig } from './app';
import { joinCluster } from './cluster/node';
import { readConfig } from './config';
import { ROOT } from './paths';
import { createStateFile, stuck } from './state-file';

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const sync = pino.destination({ sync: true });
  const logger = pino({ level: config.LOG_LEVEL, base: { app: 'forkcast' } }, sync);
  let host: { app: Partial<AppConfig>; close?: () => Promise<void> };
  if (config.REDIS_URL) {
    // A cluster node: state in Redis, ticker on the leader; the host reaches the app once it runs.
    host = await joinCluster({
      redisUrl: config.REDIS_URL,
      tickMs: config.TICK_MS,
      logger,
      io: () => app.io,
      onRestart: () => app.metrics.tickerRestarted(),
    });
  } else {
    const store = createStateFile({
      path: path.resolve(ROOT, config.STATE_FILE),
      logger: logger.child({ part: 'state' }),
    });
    host = { app: { initialState: await store.open(), store } };
  }
  const app = createApp({
    logger,
    tickMs: config.TICK_MS,
    opsPerSecond: config.OPS_PER_SECOND,
    controlToken: config.CONTROL_TOKEN,
    allowedOrigins: config.CORS_ORIGINS,
    allowedHosts: config.ALLOWED_HOSTS,
    transports: config.TRANSPORTS,
    devServer: config.CLIENT_DEV_SERVER,
    trustProxy: config.TRUST_PROXY,
    ...host.app,
  });

  const exit = (code: number | 'SIGKILL', message: string, fields: object = {}): never => {
    logger[code === 0 ? 'info' : 'error'](fields, message);
    // Forced exits kill: exit() joins threads, and a hung write never ends (hence the sync logs).
    if (code === 'SIGKILL') process.kill(process.pid, code);
    process.exit(code === 'SIGKILL' ? 137 : code);
  };
  let stopping: { signal: NodeJS.Signals; at: number } | undefined;
  const shutdown = (signal: NodeJS.Signals): void => {
    // Ctrl-C reaches the whole process group and npm forwards it again: ignore that copy (1 s).
    if (stopping?.signal === signal && performance.now() - stopping.at < 1_000) return;
    if (stopping) exit('SIGKILL', 'second signal: exiting now', { signal });
    stopping = { signal, at: performance.now() };
    logger.info({ signal }, 'shutting down');
    setTimeout(() => exit('SIGKILL', 'shutdown took too long'), 5_000).unref();
    const closed = app.close().then(host.close);
    closed.then(
      () => exit(0, 'bye'),
      (err: unknown) => exit(1, 'shutdown failed', { err }),
    );
  };
  process.on('SIGTERM', shutdown).on('SIGINT', shutdown).on('SIGHUP', shutdown);
  // An unawaited library promise (the adapter with Redis away) must not take every client down.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection, ignored'));

  // A signal during start-up fails listen(): that is the shutdown, not a start-up failure.
  const address = await app.listen(config.PORT, config.HOST).catch((error: unknown) => {
    if (!stopping) throw error;
  });
  if (!address) return;
  const { address: ip, family, port } = address;
  const url = `http://${family === 'IPv6' ? `[${ip}]` : ip}:${port}`;
  logger.info({ url, pid: process.pid }, 'forkcast listening');
}

main().catch(async (error: unknown) => {
  // To stderr: the logger may not exist yet. exit() would wait for good on a hung disk's thread.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`forkcast failed to start: ${message}\n`);
  if (await stuck(2_000)) process.kill(process.pid, 'SIGKILL');
  process.exit(1);
});
