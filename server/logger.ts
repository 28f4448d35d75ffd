import { pino, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** One structured logger for the whole server; JSON lines on stdout, level from config. */
export const createLogger = (level: LevelWithSilent) => pino({ level, base: { app: 'forkcast' } });
