/** Updates and statuses are entries of the adapter's stream, as it stores `io.to(REPLAY_ROOM)
 * .emit()`, so recovery replays them. Live sockets are never in that room: each node reads the
 * stream itself and its broadcaster sends them, so its sockets and its snapshot never race. */
import { setTimeout as pause } from 'node:timers/promises';

import type { Socket } from 'socket.io';

import type { ForkcastIo } from '../io';
import type { Logger } from '../logger';
import type { RedisClient } from './lease';

export const STREAM_KEY = 'forkcast:stream';
const REPLAY_ROOM = 'forkcast:replay';
/** Marks our entries; no adapter has this uid, so none skips them as its own. */
const UID = 'forkcast';

type StreamEvent = 'update' | 'status';
export type Stream = Awaited<ReturnType<typeof openStream>>;

/** Reads the stream from its current end (`reader` blocks: a connection of its own); resolves
 * once no entry added later can be missed. Every node's onEntry gets every append. */
export async function openStream(
  io: ForkcastIo,
  writer: RedisClient,
  reader: RedisClient,
  options: {
    maxLen: number;
    logger: Logger;
    onEntry: (event: StreamEvent, payload: unknown, offset: string) => void;
  },
) {
  io.on('connection', (socket) => {
    // Recovery put it back in the room: live, this node's broadcaster sends to it instead.
    if (socket.recovered) void socket.leave(REPLAY_ROOM);
    // So the session saved for its recovery asks for the room's entries.
    socket.on('disconnecting', joinReplay);
  });
  const last = (await reader.xRevRange(STREAM_KEY, '+', '-', { COUNT: 1 }))?.[0];
  let from = last?.id ?? '0-0';
  let closed = false;
  void (async () => {
    while (!closed) {
      try {
        const reply = (await reader.xRead(
          { key: STREAM_KEY, id: from },
          { BLOCK: 1_000, COUNT: 100 },
        )) as { messages: { id: string; message: Record<string, string> }[] }[] | null;
        for (const { id, message } of reply?.[0]?.messages ?? []) {
          from = id;
          if (message['uid'] !== UID) continue;
          const { packet } = JSON.parse(message['data'] ?? '') as { packet: { data: unknown[] } };
          options.onEntry(packet.data[0] as StreamEvent, packet.data[1], id);
        }
      } catch (error) {
        if (closed || !reader.isOpen) return;
        // Thrown by an entry, it is skipped (`from` is past it); by Redis, it is read again.
        options.logger.warn({ err: error, from }, 'reading the stream failed; retrying');
        await pause(200);
      }
    }
  })();

  return {
    async append(event: StreamEvent, payload: unknown): Promise<void> {
      const packet = { type: 2, data: [event, payload], nsp: '/' };
      const opts = { rooms: [REPLAY_ROOM], except: [], flags: {} };
      const entry = { uid: UID, nsp: '/', type: '3', data: JSON.stringify({ packet, opts }) };
      const trim = {
        strategy: 'MAXLEN',
        strategyModifier: '~',
        threshold: options.maxLen,
      } as const;
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
