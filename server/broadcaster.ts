/** Sends updates and statuses to this node's sockets in publish order. While ops come in, an update
 * goes out shard by shard over event-loop turns, serving them in between; else in one emit. */
import type { OpeningPayload, StatusPayload, UpdatePayload } from '../protocol/events';
import type { ForkcastIo, ForkcastSocket } from './io';
import { historyTo } from './ticker-host';

export type Outgoing = (
  | { event: 'update'; payload: UpdatePayload }
  | { event: 'status'; payload: StatusPayload }
  | { event: 'opening'; payload: OpeningPayload }
) & { offset?: string | undefined };

type Sending = Outgoing & { event: 'update'; shard: number; deliveries: number };

const SHARDS = 64;
const shardRoom = (shard: number): string => `forkcast:shard:${shard}`;

export class UpdateBroadcaster {
  private readonly queue: Outgoing[] = [];
  private sending: Sending | null = null;
  private turn: NodeJS.Immediate | undefined;
  /** The shard new sockets join, and how many more it takes before the next block starts. */
  private block = { shard: 0, left: 0 };
  private stopped = false;
  private lastOpAt = Number.NEGATIVE_INFINITY;

  /** `onDelivered`: an update was handed to every socket (`deliveries` of them); `also` sees each
   * event as it goes out. An emit: ~`socketsPerTurn` sockets; a turn: `turnMs` (0: one emit). */
  constructor(
    private readonly io: ForkcastIo,
    private readonly onDelivered: (update: UpdatePayload, deliveries: number) => void,
    private readonly also: (outgoing: Outgoing) => void = () => undefined,
    private readonly socketsPerTurn = 128,
    private readonly turnMs = 2,
  ) {}

  /** Shards a new socket and says what to greet it with. Consecutive sockets share a shard (a turn
   * walks warm memory). During a broadcast only shards already sent qualify, and the greeting is
   * the update going out, so the socket neither misses nor doubles it; when idle, `snapshot` is. */
  admit(socket: Pick<ForkcastSocket, 'join'>, snapshot: UpdatePayload, history: UpdatePayload[]) {
    const eligible = this.sending ? this.sending.shard : SHARDS;
    if (this.block.left === 0 || this.block.shard >= eligible) {
      const rooms = this.io.of('/').adapter.rooms;
      const size = (shard: number): number => rooms.get(shardRoom(shard))?.size ?? 0;
      const emptiest = [...Array(eligible).keys()].reduce((a, b) => (size(b) < size(a) ? b : a), 0);
      this.block = { shard: emptiest, left: this.socketsPerTurn };
    }
    this.block.left--;
    void socket.join(shardRoom(this.block.shard));
    const update = this.sending?.payload ?? snapshot;
    return { update, history: historyTo(history, update) };
  }

  /** Statuses queue too: sent at once, one could overtake an update still going out. */
  readonly publish = (payload: UpdatePayload, offset?: string): void =>
    this.pump({ event: 'update', payload, offset });
  readonly publishStatus = (payload: StatusPayload, offset?: string): void =>
    this.pump({ event: 'status', payload, offset });
  readonly publishOpening = (payload: OpeningPayload, offset?: string): void =>
    this.pump({ event: 'opening', payload, offset });

  readonly opArrived = (): void => void (this.lastOpAt = performance.now());

  stop(): void {
    this.stopped = true;
    this.sending = null;
    clearImmediate(this.turn);
  }

  /** Queues `outgoing`, then starts what is queued, in order, unless an update is still going
   * out. Reentrant: a publish from onDelivered lands here, behind what waits before it. */
  private pump(outgoing?: Outgoing): void {
    if (outgoing && !this.stopped) this.queue.push(outgoing);
    while (!this.sending && !this.stopped) {
      const next = this.queue.shift();
      if (!next) return;
      this.also(next);
      // Sharded only if ops came in: between turns, sent sockets' write callbacks delay the rest.
      if (next.event === 'update' && performance.now() - this.lastOpAt < 1_000) {
        this.sending = { ...next, shard: 0, deliveries: 0 };
        this.step(this.sending);
        continue;
      }
      emit(this.io.local, next);
      if (next.event === 'update') this.onDelivered(next.payload, this.io.of('/').sockets.size);
    }
  }

  /** Sends the update in flight to the next shards until the turn is up, then yields to ops. */
  private step(sending: Sending): void {
    const rooms = this.io.of('/').adapter.rooms;
    const started = performance.now();
    do {
      const batch: string[] = [];
      let sockets = 0;
      while (sending.shard < SHARDS && sockets < this.socketsPerTurn) {
        const room = shardRoom(sending.shard++);
        const size = rooms.get(room)?.size ?? 0;
        if (size > 0) batch.push(room);
        sockets += size;
      }
      // One emit for the whole batch: the packet and its WebSocket frame are encoded once.
      if (batch.length > 0) emit(this.io.local.to(batch), sending);
      sending.deliveries += sockets;
    } while (sending.shard < SHARDS && performance.now() - started < this.turnMs);
    if (sending.shard >= SHARDS) {
      this.sending = null;
      return this.onDelivered(sending.payload, sending.deliveries);
    }
    this.turn = setImmediate(() => {
      this.step(sending);
      this.pump();
    });
  }
}

/** The offset goes last, where Socket.IO's client reads it; the event map does not know it. */
function emit(target: { emit(...args: unknown[]): unknown }, { event, payload, offset }: Outgoing) {
  target.emit(event, payload, ...(offset === undefined ? [] : [offset]));
}
