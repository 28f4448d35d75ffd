/** GET /api/stream: Server-Sent Events with what the sockets get, in their order; `Last-Event-ID`
 * resumes from the saved history. A client that stops reading is dropped, never buffered. */
import { createEventBuffer, createSession } from 'better-sse';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

import type { Outgoing } from './broadcaster';
import { historyTo, type TickerHost } from './ticker-host';

/** One event as better-sse writes it; an update's id is its seq, which a reconnect sends back. */
function frame(event: string, payload: unknown, id?: number): string {
  const buffer = createEventBuffer().event(event);
  if (id !== undefined) buffer.id(String(id));
  return buffer.data(payload).dispatch().read();
}

export function createEventStream(
  ticker: Pick<TickerHost, 'snapshot' | 'greeting'>,
  logger: Logger,
  // Past `maxUnsent` unsent bytes (about a thousand updates) a client counts as not reading.
  { maxUnsent = 256 * 1024, heartbeatMs = 20_000 } = {},
) {
  /** Each open stream, with the last seq it was sent. */
  const clients = new Map<ServerResponse, number>();
  const write = (res: ServerResponse, text: string | Buffer): void => {
    if (res.writableLength <= maxUnsent) return void res.write(text);
    logger.warn({ unsent: res.writableLength }, 'dropped a stream client that stopped reading');
    clients.delete(res);
    res.destroy();
  };
  const heartbeat = setInterval(() => {
    for (const res of clients.keys()) write(res, ':\n\n');
  }, heartbeatMs).unref();

  return {
    /** An event for every stream (the broadcaster's `also`); updates each stream has are skipped. */
    publish: ({ event, payload }: Outgoing): void => {
      // Encoded once for every client, not by each write; not at all while nobody streams.
      if (clients.size === 0) return;
      const text = Buffer.from(frame(event, payload, event === 'update' ? payload.seq : undefined));
      for (const [res, seq] of clients) {
        if (event === 'update' && payload.seq <= seq) continue;
        if (event === 'update') clients.set(res, payload.seq);
        write(res, text);
      }
    },
    async connect(req: IncomingMessage, res: ServerResponse): Promise<void> {
      const session = await createSession(req, res, { keepAlive: null });
      // What it missed if the saved history still holds all of it, else a fresh snapshot.
      const snapshot = ticker.snapshot();
      const { history, opening } = ticker.greeting();
      // No id, or one that is not a seq: NaN, which resumes nothing.
      const last = /^\d{1,16}$/.test(session.lastId) ? Number(session.lastId) : NaN;
      const missed = historyTo(history, snapshot).filter(({ seq }) => seq > last);
      const resumed = last <= snapshot.seq && missed.every(({ seq }, i) => seq === last + 1 + i);
      const greeting = resumed ? missed : [snapshot];
      if (!resumed && session.lastId !== '')
        res.write(frame('resync', { lastEventId: session.lastId }));
      const text = greeting.map((update) => frame('update', update, update.seq)).join('');
      res.write(`${text}${frame('opening', opening)}`);
      clients.set(res, snapshot.seq);
      res.once('close', () => clients.delete(res));
    },
    close(): void {
      clearInterval(heartbeat);
      for (const res of clients.keys()) res.end();
      clients.clear();
    },
  };
}
