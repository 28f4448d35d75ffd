/**
 * The entry: read config, start, and shut down cleanly on SIGTERM / SIGINT. All wiring lives
 * in createApp() so tests can run the same server in-process.
 */
import path from 'node:path';

import { createApp } from './app';
import { readConfig } from './config';
import { createLogger } from './logger';
import { ROOT } from './paths';
import { createStateFile } from './state-file';

/** A shutdown that takes longer than this is abandoned with a non-zero exit. */
const SHUTDOWN_DEADLINE_MS = 5_000;

async function main(): Promise<void> {
  const config = readConfig(process.env);
  const logger = createLogger(config.LOG_LEVEL);
  const stateFile = createStateFile({
    path: path.resolve(ROOT, config.STATE_FILE),
    logger: logger.child({ part: 'state' }),
  });
  const saved = await stateFile.load();
  const forkcast = createApp({
    logger,
    tickMs: config.TICK_MS,
    ...(saved ? { initialState: saved } : {}),
    stateStore: stateFile,
    opsPerSecond: config.OPS_PER_SECOND,
    controlToken: config.CONTROL_TOKEN,
    allowedOrigins: config.CORS_ORIGINS,
  });

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    forkcast.close().then(
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

  let address;
  try {
    address = await forkcast.listen(config.PORT, config.HOST);
  } catch (error) {
    // A signal during start-up closes the ticker before it is ready, which fails listen();
    // that is the shutdown in progress, not a start-up failure.
    if (stopping) return;
    throw error;
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ url: `http://${host}:${address.port}`, pid: process.pid }, 'forkcast listening');
}

main().catch((error: unknown) => {
  // The logger may not exist yet (bad config), so this one message goes to stderr directly.
  process.stderr.write(
    `forkcast failed to start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
