import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;

/** One structured logger for the whole server; JSON lines on stdout, level from config. */
export function createLogger(level: LevelWithSilent = 'info'): Logger {
  return pino({ level, base: { app: 'forkcast' } });
}
