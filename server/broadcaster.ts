/** Sends each update to every socket in seq order, in event-loop turns of about turnMs each
 * (emits of about socketsPerTurn sockets), so ops and acks are served in between. One broadcast
 * finishes before the next; then
 * `onDelivered` tells the ticker, which lets it conflate buys instead of queueing updates. */
import type { StatusPayload, UpdatePayload } from '../protocol/events';
import { HISTORY_LENGTH } from '../protocol/events';
import type { ForkcastIo } from './io';

export interface BroadcasterOptions {
  /** Called once an update has been handed to every socket, with how many got it. */
  onDelivered: (update: UpdatePayload, deliveries: number) => void;
  /** Called if onDelivered throws; the broadcaster carries on with the next message. */
  onError: (error: unknown) => void;
  /** Shard rooms sockets are spread over (default 64). */
  shards?: number;
  /** About how many sockets one emit sends to, and consecutive sockets share a shard (default
   * 128). An emit sends at least one whole shard. */
  socketsPerTurn?: number;
  /** A turn goes on emitting to further batches until it has taken this long (default 2 ms):
   * fewer turns cost less, and acks still wait at most about this long. 0: one batch a turn. */
  turnMs?: number;
}

/** What goes out to everyone, in the order it was published. */
type Outgoing =
  | { kind: 'update'; update: UpdatePayload; offset: string | undefined }
  | { kind: 'status'; status: StatusPayload; offset: string | undefined };

/** Room names are server-side only; clients never see them. */
const shardRoom = (shard: number): string => `forkcast:shard:${shard}`;

export class UpdateBroadcaster {
  private readonly shards: number;
  private readonly socketsPerTurn: number;
  private readonly turnMs: number;
  private readonly queue: Outgoing[] = [];
  private readonly recent: UpdatePayload[] = [];
  /** The update being sent, the next shard to send it to, and how many got it so far. */
  private sending: {
    update: UpdatePayload;
    offset: string | undefined;
    shard: number;
    deliveries: number;
  } | null = null;
  private turn: NodeJS.Immediate | null = null;
  /** The shard new sockets join, and how many more it takes before the next block starts. */
  private block: { shard: number; left: number } | null = null;
  private stopped = false;
  /** Inside onDelivered: a publish from there must queue, not start a second broadcast. */
  private finishing = false;

  constructor(
    private readonly io: ForkcastIo,
    private readonly options: BroadcasterOptions,
  ) {
    this.shards = options.shards ?? 64;
    this.socketsPerTurn = options.socketsPerTurn ?? 128;
    this.turnMs = options.turnMs ?? 2;
  }

  /** The update going out, which a socket connecting now starts from (its shard has had it, see
   * assignShard). Null when idle: then the ticker's snapshot is current. */
  get inFlight(): UpdatePayload | null {
    return this.sending?.update ?? null;
  }

  /** The last HISTORY_LENGTH updates whose broadcast has begun, oldest first. */
  history(): UpdatePayload[] {
    return [...this.recent];
  }

  /** Nothing is being sent or waiting to be: every update so far has reached every socket. */
  get idle(): boolean {
    return this.sending === null && this.queue.length === 0;
  }

  /** Consecutive sockets share a shard (up to socketsPerTurn) so a turn walks warm memory. During
   * a broadcast only shards that have had the update qualify, so `inFlight` is never sent twice. */
  assignShard(socket: { join(room: string): unknown }): void {
    // step() runs synchronously when a broadcast begins, so one in flight has passed shard 0.
    const eligible = this.sending ? this.sending.shard : this.shards;
    let block = this.block;
    if (!block || block.left === 0 || block.shard >= eligible) {
      const rooms = this.io.of('/').adapter.rooms;
      let emptiest = 0;
      let fewest = Number.POSITIVE_INFINITY;
      for (let shard = 0; shard < eligible; shard++) {
        const size = rooms.get(shardRoom(shard))?.size ?? 0;
        if (size < fewest) [emptiest, fewest] = [shard, size];
      }
      block = this.block = { shard: emptiest, left: this.socketsPerTurn };
    }
    block.left--;
    void socket.join(shardRoom(block.shard));
  }

  /** `offset`: the update's recovery offset in a cluster's stream, sent as its last argument. */
  publish(update: UpdatePayload, offset?: string): void {
    this.enqueue({ kind: 'update', update, offset });
  }

  /** A status for this node's sockets, queued behind earlier updates: sent at once, a "Stopped"
   * could be followed by an older update that says running. */
  publishStatus(status: StatusPayload, offset?: string): void {
    this.enqueue({ kind: 'status', status, offset });
  }

  /** Drops what is queued and stops sending (shutdown). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.sending = null;
    if (this.turn) clearImmediate(this.turn);
    this.turn = null;
  }

  private enqueue(outgoing: Outgoing): void {
    if (this.stopped) return;
    this.queue.push(outgoing);
    if (!this.sending && !this.finishing) this.next();
  }

  private next(): void {
    for (let outgoing = this.queue.shift(); outgoing; outgoing = this.queue.shift()) {
      if (outgoing.kind === 'status') {
        // One small emit: no turns needed.
        emitEvent(this.io.local, 'status', outgoing.status, outgoing.offset);
        continue;
      }
      const { update, offset } = outgoing;
      this.recent.push(update);
      if (this.recent.length > HISTORY_LENGTH) this.recent.shift();
      const sockets = this.io.sockets.sockets.size;
      if (sockets > this.socketsPerTurn) {
        this.sending = { update, offset, shard: 0, deliveries: 0 };
        this.step();
        return;
      }
      // Small enough for one turn: one plain emit, encoded once, no rooms to walk.
      emitEvent(this.io.local, 'update', update, offset);
      if (!this.finish(update, sockets)) return;
    }
  }

  /** Sends the update in flight to the next shards, in batches of about socketsPerTurn sockets,
   * until this turn has taken turnMs; then yields so that ops and acks are served. */
  private step(): void {
    this.turn = null;
    const sending = this.sending;
    if (!sending) return;
    const rooms = this.io.of('/').adapter.rooms;
    const started = performance.now();
    do {
      const batch: string[] = [];
      let sockets = 0;
      while (sending.shard < this.shards && sockets < this.socketsPerTurn) {
        const room = shardRoom(sending.shard++);
        const size = rooms.get(room)?.size ?? 0;
        if (size === 0) continue;
        batch.push(room);
        sockets += size;
      }
      // One emit for the whole batch: the packet and its WebSocket frame are encoded once.
      if (batch.length > 0)
        emitEvent(this.io.local.to(batch), 'update', sending.update, sending.offset);
      sending.deliveries += sockets;
    } while (sending.shard < this.shards && performance.now() - started < this.turnMs);
    if (sending.shard < this.shards) {
      this.turn = setImmediate(() => this.step());
      return;
    }
    this.sending = null;
    if (this.finish(sending.update, sending.deliveries)) this.next();
  }

  /** Reports a finished update; false when the broadcaster was stopped meanwhile. */
  private finish(update: UpdatePayload, deliveries: number): boolean {
    this.finishing = true;
    try {
      this.options.onDelivered(update, deliveries);
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.finishing = false;
    }
    return !this.stopped;
  }
}

/** In a cluster the stream offset goes out as the last argument, where Socket.IO's client reads
 * it for recovery; it is below the contract, so the event map does not know it. */
function emitEvent(
  target: { emit(...args: unknown[]): unknown },
  event: 'update' | 'status',
  payload: UpdatePayload | StatusPayload,
  offset: string | undefined,
): void {
  if (offset === undefined) target.emit(event, payload);
  else target.emit(event, payload, offset);
}
