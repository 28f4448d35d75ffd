/**
 * Cluster fan-out: Socket.IO's Redis Streams adapter, plus a view of what it delivers.
 *
 * In a cluster the leader emits each update once, through the adapter: it goes into the Redis
 * stream (which is what connection state recovery replays from) and every node hands it to
 * its own sockets. Each node must also know the latest update its sockets have had, to greet
 * late joiners with it; learning it any other way (a second channel, a Redis read) would race
 * with the stream, and a socket joining in between would see an update twice or miss one. So
 * the adapter is observed at the point where it delivers to this node's sockets: after a
 * remote node's broadcast (`onMessage`, which delivers synchronously) and after this node's own
 * (`broadcast`, which resolves once the local sockets have it).
 */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { MessageType } from 'socket.io-adapter';

export interface Delivered {
  /** Event name and arguments as the sockets got them (offset excluded). */
  event: string;
  args: unknown[];
}

export interface ClusterAdapterOptions {
  /** The Redis stream the adapter shares with the other nodes. */
  streamName: string;
  /** Stream entries kept: enough for connection state recovery's whole window. */
  maxLen: number;
  /**
   * Called with every broadcast to all sockets of the default namespace that this node's
   * sockets get: another node's just before they get it (return false to drop it: an update
   * this node has delivered already), this node's own just after.
   */
  onBroadcast: (delivered: Delivered) => boolean;
  /** Called if onBroadcast throws; the broadcast goes on. */
  onError: (error: unknown) => void;
  /** Called with every entry this node reads from the stream (its own included). */
  onStreamEntry?: () => void;
}

interface Packet {
  type: number;
  data?: unknown[];
}
interface BroadcastOpts {
  rooms: Set<string>;
  except?: Set<string>;
  flags?: { local?: boolean };
}
interface ObservableAdapter {
  readonly uid: string;
  broadcast(packet: Packet, opts: BroadcastOpts): unknown;
  onMessage(message: { uid: string; type: MessageType; data?: unknown }, offset?: string): unknown;
}

const EVENT_PACKET = 2;

/** `createAdapter` for `new Server({adapter})`, on `redis` (a client of its own: it blocks). */
export function createObservedAdapter(
  redis: unknown,
  { streamName, maxLen, onBroadcast, onError, onStreamEntry }: ClusterAdapterOptions,
): ReturnType<typeof createAdapter> {
  const factory = createAdapter(redis, { streamName, maxLen });
  // Socket.IO calls `new adapter(nsp)`: an arrow function cannot be, a function can (and
  // `new` then yields the object it returns).
  return function observedAdapter(nsp: { name: string }) {
    const adapter = factory(nsp);
    if (nsp.name !== '/') return adapter;
    const observable = adapter as unknown as ObservableAdapter;
    /** Tells onBroadcast about a broadcast to everyone; false only if it says to drop it. */
    const report = (packet: Packet | undefined, opts: unknown): boolean => {
      if (packet?.type !== EVENT_PACKET || !Array.isArray(packet.data)) return true;
      if (!toEveryone(opts)) return true;
      const [event, ...args] = packet.data;
      if (typeof event !== 'string') return true;
      try {
        // Recovery appends the stream offset as a last argument; it is not part of the event.
        return onBroadcast({ event, args: args.slice(0, eventArity) });
      } catch (error) {
        onError(error);
        return true;
      }
    };

    const broadcast = observable.broadcast.bind(adapter);
    observable.broadcast = (packet, opts) => {
      const done = broadcast(packet, opts);
      if (opts.flags?.local) return done;
      // ClusterAdapter.broadcast resolves right after handing the packet to local sockets.
      void Promise.resolve(done).then(() => report(packet, opts));
      return done;
    };

    const onMessage = observable.onMessage.bind(adapter);
    observable.onMessage = (message, offset) => {
      // Only stream entries carry an offset (pub/sub messages come another way).
      if (offset !== undefined) onStreamEntry?.();
      // This node's own entries come back from the stream too; they were reported when sent.
      const remote = message.uid !== observable.uid;
      if (
        remote &&
        message.type === MessageType.BROADCAST &&
        isPlainBroadcast(message.data) &&
        !report(message.data.packet, message.data.opts)
      )
        return undefined;
      return onMessage(message, offset);
    };
    return adapter;
  };
}

/** Both payloads this observer cares about (`update`, `status`) are one argument. */
const eventArity = 1;

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

function isPlainBroadcast(data: unknown): data is { packet: Packet; opts: unknown } {
  return (
    typeof data === 'object' &&
    data !== null &&
    'packet' in data &&
    !('requestId' in data && data.requestId !== undefined)
  );
}

/**
 * The newest `update` broadcast to everyone among the last `count` entries of the stream, or
 * null. Entries are written by the adapter: `type` 3 is a broadcast, and `data` is JSON unless
 * the packet held binary (never the case for an update).
 */
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
      if (packet?.data?.[0] === 'update' && toEveryone(opts)) return packet.data[1];
    } catch {
      // Not ours to judge: another version's entry. Keep looking.
    }
  }
  return null;
}
