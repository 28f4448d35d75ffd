/** The cluster's updates and statuses are entries of the adapter's Redis stream, in the form the
 * adapter stores `io.to(REPLAY_ROOM).emit()` in, so connection state recovery replays them. Nobody
 * is in that room while connected, so the adapter sends them to no one: each node reads them with
 * its own XREAD and its broadcaster sends them (turns, flow control), so what its sockets got and
 * its snapshot never race. */
import { setTimeout as pause } from 'node:timers/promises';

import type { Socket } from 'socket.io';

import type { ForkcastIo } from '../io';
import type { Logger } from '../logger';
import type { RedisClient } from './lease';

export const STREAM_KEY = 'forkcast:stream';
/** A socket joins it as it disconnects, so the session saved for its recovery asks for these. */
const REPLAY_ROOM = 'forkcast:replay';
/** Marks our entries; no adapter has this uid, so none skips them as its own. */
const UID = 'forkcast';

export type StreamEvent = 'update' | 'status';
export type Stream = Awaited<ReturnType<typeof openStream>>;

interface StreamOptions {
  /** Appends, failing fast while Redis is away. */
  writer: RedisClient;
  /** Blocks on XREAD: a connection of its own. */
  reader: RedisClient;
  maxLen: number;
  logger: Logger;
  onEntry: (event: StreamEvent, payload: unknown, offset: string) => void;
}

/** Reads the stream from its current end on; resolves once no entry added later can be missed. */
export async function openStream(
  io: ForkcastIo,
  { writer, reader, maxLen, logger, onEntry }: StreamOptions,
) {
  io.on('connection', (socket) => {
    // Recovery put it back in the room: live, this node's broadcaster sends to it instead.
    if (socket.recovered) void socket.leave(REPLAY_ROOM);
    socket.on('disconnecting', joinReplay);
  });
  const last = (await reader.xRevRange(STREAM_KEY, '+', '-', { COUNT: 1 }))?.[0];
  let closed = false;
  void (async () => {
    let from = last?.id ?? '0-0';
    while (!closed) {
      try {
        const reply = (await reader.xRead(
          { key: STREAM_KEY, id: from },
          { BLOCK: 1_000, COUNT: 100 },
        )) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
        for (const { id, message } of reply?.[0]?.messages ?? []) {
          from = id;
          if (message['uid'] === UID) dispatch(message['data'], id);
        }
      } catch (error) {
        if (closed || !reader.isOpen) return;
        logger.warn({ err: error }, 'reading the stream failed; retrying');
        await pause(200);
      }
    }
  })();

  function dispatch(data: string | undefined, offset: string): void {
    try {
      const { packet } = JSON.parse(data ?? '') as { packet: { data: [StreamEvent, unknown] } };
      onEntry(packet.data[0], packet.data[1], offset);
    } catch (error) {
      // Thrown into the loop, it would skip the rest of the entries read with this one.
      logger.error({ err: error, offset }, 'handling an entry of the stream failed');
    }
  }

  return {
    /** Every node's onEntry follows as it reads it, this one's too. */
    async append(event: StreamEvent, payload: unknown): Promise<void> {
      const packet = { type: 2, data: [event, payload], nsp: '/' };
      const opts = { rooms: [REPLAY_ROOM], except: [], flags: {} };
      const entry = { uid: UID, nsp: '/', type: '3', data: JSON.stringify({ packet, opts }) };
      const trim = { strategy: 'MAXLEN', strategyModifier: '~', threshold: maxLen } as const;
      await writer.xAdd(STREAM_KEY, '*', entry, { TRIM: trim });
    },
    close(): void {
      closed = true;
    },
  };
}

function joinReplay(this: Socket): void {
  void this.join(REPLAY_ROOM);
}
