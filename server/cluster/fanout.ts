/** The Redis Streams adapter, but updates (stored as its broadcasts, so recovery replays them) go
 * to `onUpdate` for the broadcaster to send in turns, not in one loop-blocking go. That also tells
 * each node what its sockets are getting, without racing the stream. The rest is the adapter's. */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { MessageType } from 'socket.io-adapter';

export interface ClusterAdapterOptions {
  /** The Redis stream the adapter shares with the other nodes. */
  streamName: string;
  /** Stream entries kept: enough for connection state recovery's whole window. */
  maxLen: number;
  /** An update for every socket of this node, another node's or this node's own, in order. */
  onUpdate: (update: unknown, offset: string) => void;
  /** A status this node's sockets have been sent. */
  onStatus: (status: unknown) => void;
  /** Called if onUpdate or onStatus throws. */
  onError: (error: unknown) => void;
  /** Called with every entry this node reads from the stream (its own included). */
  onStreamEntry?: () => void;
}

export interface ClusterFanout {
  /** For `new Server({adapter})`. */
  adapter: ReturnType<typeof createAdapter>;
  /** Puts an update into the stream for every node (this one's onUpdate follows once Redis has
   * it). Rejects if Redis did not take it. */
  publishUpdate(update: unknown): Promise<void>;
}

interface Packet {
  type: number;
  data?: unknown[];
  nsp?: string;
}
interface BroadcastOpts {
  rooms: Set<string>;
  except?: Set<string>;
  flags?: { local?: boolean };
}
interface ClusterMessage {
  uid: string;
  type: MessageType;
  data?: unknown;
}
/** The parts of socket.io-adapter's ClusterAdapter used here (`onMessage` and
 * `publishAndReturnOffset` are its protected API for subclasses). */
interface ObservableAdapter {
  readonly uid: string;
  broadcast(packet: Packet, opts: BroadcastOpts): unknown;
  onMessage(message: ClusterMessage, offset?: string): unknown;
  publishAndReturnOffset(message: { type: MessageType; data: unknown }): Promise<string>;
}

const EVENT_PACKET = 2;

/** `redis`: a client of the adapter's own (its reads block). */
export function createClusterFanout(
  redis: unknown,
  { streamName, maxLen, onUpdate, onStatus, onError, onStreamEntry }: ClusterAdapterOptions,
): ClusterFanout {
  const factory = createAdapter(redis, { streamName, maxLen });
  let root: ObservableAdapter | null = null;

  const guarded =
    <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A): void => {
      try {
        handler(...args);
      } catch (error) {
        onError(error);
      }
    };
  const update = guarded(onUpdate);
  const status = guarded(onStatus);

  // Socket.IO calls `new adapter(nsp)`: not an arrow, and `new` yields the object returned.
  const adapter = function observedAdapter(nsp: { name: string }) {
    const created = factory(nsp);
    if (nsp.name !== '/') return created;
    const observable = created as unknown as ObservableAdapter;
    root = observable;

    const broadcast = observable.broadcast.bind(created);
    observable.broadcast = (packet, opts) => {
      const done = broadcast(packet, opts);
      const payload = statusOf(packet, opts);
      // ClusterAdapter.broadcast resolves right after handing the packet to local sockets.
      if (payload !== undefined && !opts.flags?.local)
        void Promise.resolve(done).then(() => status(payload));
      return done;
    };

    const onMessage = observable.onMessage.bind(created);
    observable.onMessage = (message, offset) => {
      // Only stream entries carry an offset (pub/sub messages come another way).
      if (offset !== undefined) onStreamEntry?.();
      // This node's own entries come back from the stream too: the adapter ignores them.
      if (message.uid === observable.uid || message.type !== MessageType.BROADCAST)
        return onMessage(message, offset);
      const { packet, opts } = plainBroadcast(message.data) ?? {};
      const payload = updateOf(packet, opts);
      if (payload !== undefined && offset !== undefined) {
        update(payload, offset);
        return undefined;
      }
      const result = onMessage(message, offset);
      const said = statusOf(packet, opts);
      if (said !== undefined) status(said);
      return result;
    };
    return created;
  };

  return {
    adapter,
    async publishUpdate(payload) {
      if (!root) throw new Error('the cluster adapter is not created yet');
      // What ClusterAdapter.broadcast would publish for `io.emit('update', payload)`.
      const offset = await root.publishAndReturnOffset({
        type: MessageType.BROADCAST,
        data: {
          packet: { type: EVENT_PACKET, data: ['update', payload], nsp: '/' },
          opts: { rooms: [], except: [], flags: {} },
        },
      });
      update(payload, offset);
    },
  };
}

/** The payload of an event `name` broadcast to everyone, else undefined. */
function payloadOf(name: string, packet: Packet | undefined, opts: unknown): unknown {
  if (packet?.type !== EVENT_PACKET || !Array.isArray(packet.data)) return undefined;
  if (packet.data[0] !== name || !toEveryone(opts)) return undefined;
  return packet.data[1];
}

const updateOf = (packet: Packet | undefined, opts: unknown): unknown =>
  payloadOf('update', packet, opts);
const statusOf = (packet: Packet | undefined, opts: unknown): unknown =>
  payloadOf('status', packet, opts);

function toEveryone(opts: unknown): boolean {
  if (typeof opts !== 'object' || opts === null) return false;
  const { rooms, except } = opts as { rooms?: Iterable<string>; except?: Iterable<string> };
  return isEmpty(rooms) && isEmpty(except);
}

function isEmpty(list: Iterable<string> | undefined): boolean {
  if (list === undefined) return true;
  for (const _ of list) return false;
  return true;
}

/** A broadcast message's packet and options, unless it waits for acknowledgements. */
function plainBroadcast(data: unknown): { packet: Packet; opts: unknown } | null {
  if (typeof data !== 'object' || data === null || !('packet' in data)) return null;
  if ('requestId' in data && data.requestId !== undefined) return null;
  return data as { packet: Packet; opts: unknown };
}

/** The newest everyone-`update` among the stream's last `count` entries, or null. `data` is JSON
 * unless the packet held binary, which an update never does. */
export async function newestUpdateInStream(
  redis: {
    xRevRange(
      key: string,
      start: string,
      end: string,
      options: { COUNT: number },
    ): Promise<{ message: Record<string, string> }[] | null>;
  },
  streamName: string,
  count: number,
): Promise<unknown> {
  const entries = (await redis.xRevRange(streamName, '+', '-', { COUNT: count })) ?? [];
  for (const { message } of entries) {
    if (message['type'] !== String(MessageType.BROADCAST) || message['nsp'] !== '/') continue;
    const data = message['data'];
    if (!data?.startsWith('{')) continue;
    try {
      const { packet, opts } = JSON.parse(data) as { packet?: Packet; opts?: unknown };
      const payload = updateOf(packet, opts);
      if (payload !== undefined) return payload;
    } catch {
      // Not ours to judge: another version's entry. Keep looking.
    }
  }
  return null;
}
