/** The cluster's updates travel in the Redis Streams adapter's stream as `io.emit('update')` would
 * put them, so connection state recovery replays them. Each node, the leader too, takes them from
 * the adapter as it reads them and hands them to its broadcaster (sent in turns, with flow
 * control), so what a node's sockets got and its snapshot never race. */
import { MessageType } from 'socket.io-adapter';

import type { ForkcastIo } from '../io';
import type { Logger } from '../logger';

export type StreamTap = ReturnType<typeof tapStream>;

/** A stream entry as the adapter stores it: `data` is JSON unless the packet held binary. */
interface RawEntry {
  uid: string;
  nsp: string;
  type: string;
  data?: string;
}
/** Methods RedisStreamsAdapter declares public (its class is not exported), below Socket.IO's
 * documented API: `doPublish` implements socket.io-adapter's protected abstract method. */
interface StreamsAdapter {
  onRawMessage(entry: RawEntry, offset: string): unknown;
  doPublish(message: { uid: string; nsp: string; type: MessageType; data?: unknown }): unknown;
}

const EVENT_PACKET = 2;
const PROBE_EVERY_MS = 200;

interface TapOptions {
  /** Marks this node's entries. */
  uid: string;
  logger: Logger;
  onUpdate: (update: unknown, offset: string) => void;
  onStatus: (status: unknown, offset: string) => void;
}

/** Wraps the root namespace's adapter: updates and statuses go to `onUpdate` and `onStatus`
 * instead of straight to sockets, so each node sends them in stream order. */
export function tapStream(io: ForkcastIo, { uid, logger, onUpdate, onStatus }: TapOptions) {
  const adapter = io.of('/').adapter as unknown as StreamsAdapter;
  const pass = adapter.onRawMessage.bind(adapter);
  let read = false;
  let wake = (): void => undefined;
  adapter.onRawMessage = (entry, offset) => {
    read = true;
    wake();
    const [event, payload] = eventToEveryone(entry) ?? [];
    try {
      if (event === 'update') onUpdate(payload, offset);
      else if (event === 'status') onStatus(payload, offset);
    } catch (error) {
      // Thrown into the adapter, it would skip the rest of the entries it read with this one.
      logger.error({ err: error, event }, 'handling an entry of the stream failed');
    }
    return event === 'update' || event === 'status' ? undefined : pass(entry, offset);
  };
  const publish = (type: MessageType, data?: unknown): Promise<unknown> =>
    Promise.resolve(adapter.doPublish({ uid, nsp: '/', type, data }));

  return {
    /** Appends an update or a status to the stream; every node's onUpdate or onStatus follows as
     * it reads it. */
    async publish(event: 'update' | 'status', payload: unknown): Promise<void> {
      const packet = { type: EVENT_PACKET, data: [event, payload], nsp: '/' };
      await publish(MessageType.BROADCAST, { packet, opts: { rooms: [], except: [], flags: {} } });
    },
    /** Resolves once this node reads the stream: no entry added after that is missed. */
    async live(): Promise<void> {
      // The adapter reads only entries added after its first read began: probe until one arrives.
      while (!read) {
        await publish(MessageType.HEARTBEAT);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, PROBE_EVERY_MS);
        });
      }
    },
  };
}

/** An event entry for every socket of the main namespace, as [name, payload]; else null. */
function eventToEveryone({ nsp, type, data }: RawEntry): unknown[] | null {
  if (nsp !== '/' || type !== String(MessageType.BROADCAST) || !data?.startsWith('{')) return null;
  try {
    // The adapter's broadcast format; anything else throws here or fails the test below.
    const { packet, opts, requestId } = JSON.parse(data) as {
      packet: { type: number; data: unknown[] };
      opts: { rooms: unknown[]; except: unknown[] };
      requestId?: unknown;
    };
    const plain = requestId === undefined && packet.type === EVENT_PACKET;
    const toEveryone = opts.rooms.length + opts.except.length === 0;
    return plain && toEveryone && Array.isArray(packet.data) ? packet.data : null;
  } catch {
    return null;
  }
}
