/** The entry: config → host → app → signals. The wiring lives in createApp() so tests can run
 * the same server in-process. */
import path from 'node:path';

import { seedTickerState } from '../protocol/ipc';
import { createApp, type AppConfig, type ForkcastApp } from './app';
import { joinCluster } from './cluster/node';
import { readConfig, type ServerConfig } from './config';
import { RECOVERY_WINDOW_MS } from './io';
import { createLogger, type Logger } from './logger';
import { PATHS, ROOT } from './paths';
import { createStateFile } from './state-file';

/** A shutdown that takes longer than this is abandoned with a non-zero exit. */
const SHUTDOWN_DEADLINE_MS = 5_000;
/** The same signal again within this long is a forwarded copy of the first. */
const SIGNAL_COPY_MS = 1_000;

/** Where the ticker's state lives: what the host adds to the app, and what closes after it. */
interface Host {
  app: Partial<AppConfig>;
  close?: () => Promise<void>;
}

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const logger = createLogger(config.LOG_LEVEL);
  // The cluster's host reaches the app (its io, its metrics) only once it runs.
  const host = config.REDIS_URL
    ? await clusterHost(config.REDIS_URL, config, logger, () => app)
    : await fileHost(config, logger);
  const app = createApp({
    logger,
    tickMs: config.TICK_MS,
    opsPerSecond: config.OPS_PER_SECOND,
    controlToken: config.CONTROL_TOKEN,
    allowedOrigins: config.CORS_ORIGINS,
    allowedHosts: config.ALLOWED_HOSTS,
    transports: config.TRANSPORTS,
    devServer: config.CLIENT_DEV_SERVER,
    ...host.app,
  });

  let stopping: { signal: NodeJS.Signals; at: number } | null = null;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      // Ctrl-C reaches the whole process group and npm forwards it again: ignore that copy.
      if (signal === stopping.signal && performance.now() - stopping.at < SIGNAL_COPY_MS) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = { signal, at: performance.now() };
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    app
      .close()
      .then(() => host.close?.())
      .then(
        () => {
          logger.info('bye');
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  // An unawaited library promise (e.g. the cluster adapter while Redis is away) must not take
  // every client of this server down with it.
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection; carrying on');
  });

  let address;
  try {
    address = await app.listen(config.PORT, config.HOST);
  } catch (error) {
    // A signal during start-up fails listen(): that is the shutdown, not a start-up failure.
    if (stopping) return;
    throw error;
  }
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url, pid: process.pid }, 'forkcast listening');
}

/** One node on its own: the state lives in a file. */
async function fileHost(config: ServerConfig, logger: Logger): Promise<Host> {
  const stateStore = createStateFile({
    path: path.resolve(ROOT, config.STATE_FILE),
    logger: logger.child({ part: 'state' }),
  });
  const initialState = await stateStore.open();
  return { app: { initialState, stateStore } };
}

/** One node of a cluster: the state lives in Redis, the ticker runs on the elected leader. */
async function clusterHost(
  redisUrl: string,
  config: ServerConfig,
  logger: Logger,
  app: () => ForkcastApp,
): Promise<Host> {
  const cluster = await joinCluster(
    {
      redisUrl,
      tickMs: config.TICK_MS,
      childPath: PATHS.tickerChild,
      seed: seedTickerState(Date.now()),
      logger,
      io: () => app().io,
      onRestart: () => app().metrics.tickerRestarted(),
    },
    RECOVERY_WINDOW_MS,
  );
  logger.info({ node: cluster.ticker.nodeId }, 'joined the cluster');
  return {
    app: { ticker: cluster.ticker, adapter: cluster.adapter },
    close: () => cluster.close(),
  };
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad config), so this one message goes to stderr directly.
  process.stderr.write(
    `forkcast failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
