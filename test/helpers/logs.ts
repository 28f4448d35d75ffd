/** A real pino logger into a Recorder: in-process tests read it as process tests read stdout. */
import { pino, type Logger } from 'pino';

import { Recorder } from './recorder';
import type { LogLine } from './server-process';

/** pino's numeric levels, for asserting that a line is a warning rather than info. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export function capturingLogger(): { logger: Logger; lines: Recorder<LogLine> } {
  const lines = new Recorder<LogLine>();
  // pino writes each line with its own call.
  const write = (line: string) => lines.push(JSON.parse(line) as LogLine);
  return { logger: pino({ level: 'debug', base: { app: 'forkcast' } }, { write }), lines };
}

export function linesWith(lines: Recorder<LogLine>, msg: string, from = 0): LogLine[] {
  return lines.since(from).filter((line) => line['msg'] === msg);
}
