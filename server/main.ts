/** The entry: read config, start, shut down cleanly on SIGTERM / SIGINT. The wiring lives in
 * createApp() so tests can run the same server in-process. */
import path from 'node:path';

import { seedTickerState } from '../protocol/ipc';
import { createApp, type AppConfig, type ForkcastApp } from './app';
import { RECOVERY_WINDOW_MS } from './io';
import { joinCluster, type ClusterNode } from './cluster/node';
import { readConfig, type ServerConfig } from './config';
import { createLogger, type Logger } from './logger';
import { PATHS, ROOT } from './paths';
import { createStateFile } from './state-file';

/** A shutdown that takes longer than this is abandoned with a non-zero exit. */
const SHUTDOWN_DEADLINE_MS = 5_000;
/** The same signal again within this long is a forwarded copy of the first. */
const SIGNAL_COPY_MS = 1_000;

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const logger = createLogger(config.LOG_LEVEL);
  const common: AppConfig = {
    logger,
    tickMs: config.TICK_MS,
    opsPerSecond: config.OPS_PER_SECOND,
    controlToken: config.CONTROL_TOKEN,
    allowedOrigins: config.CORS_ORIGINS,
    allowedHosts: config.ALLOWED_HOSTS,
    transports: config.TRANSPORTS,
    devServer: config.CLIENT_DEV_SERVER,
  };
  const { forkcast, cluster } = config.REDIS_URL
    ? await clusteredApp(config.REDIS_URL, config, common)
    : { forkcast: await singleNodeApp(config, common, logger), cluster: null };
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
    closeAll(forkcast, cluster).then(
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
  // An unawaited library promise (e.g. the cluster adapter while Redis is away) must not
  // take every client of this server down with it.
  process.on('unhandledRejection', (reason) => {
    logger.error({ err: reason }, 'unhandled promise rejection; carrying on');
  });

  let address;
  try {
    address = await forkcast.listen(config.PORT, config.HOST);
  } catch (error) {
    // A signal during start-up fails listen(): that is the shutdown, not a start-up failure.
    if (stopping) return;
    throw error;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ url: `http://${host}:${address.port}`, pid: process.pid }, 'forkcast listening');
}

/** One node on its own: the state lives in a file. */
async function singleNodeApp(
  config: ServerConfig,
  common: AppConfig,
  logger: Logger,
): Promise<ForkcastApp> {
  const stateFile = createStateFile({
    path: path.resolve(ROOT, config.STATE_FILE),
    logger: logger.child({ part: 'state' }),
  });
  const initialState = await stateFile.open();
  return createApp({ ...common, initialState, stateStore: stateFile });
}

/** One node of a cluster: the state lives in Redis, the ticker runs on the elected leader. */
async function clusteredApp(
  redisUrl: string,
  config: ServerConfig,
  common: AppConfig,
): Promise<{ forkcast: ForkcastApp; cluster: ClusterNode }> {
  let forkcast: ForkcastApp | null = null;
  const cluster = await joinCluster(
    {
      redisUrl,
      tickMs: config.TICK_MS,
      childPath: PATHS.tickerChild,
      seed: seedTickerState(Date.now()),
      logger: common.logger,
      io: () => {
        if (!forkcast) throw new Error('the cluster broadcast before the app existed');
        return forkcast.io;
      },
      // Only the leader forks, after the app exists (listen() opens the host).
      onRestart: () => forkcast?.metrics.tickerRestarted(),
    },
    RECOVERY_WINDOW_MS,
  );
  common.logger.info({ node: cluster.ticker.nodeId }, 'joined the cluster');
  forkcast = createApp({ ...common, ticker: cluster.ticker, adapter: cluster.adapter });
  return { forkcast, cluster };
}

async function closeAll(forkcast: ForkcastApp, cluster: ClusterNode | null): Promise<void> {
  await forkcast.close();
  await cluster?.close();
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad config), so this one message goes to stderr directly.
  process.stderr.write(
    `forkcast failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
