/**
 * Sends each ticker update to every socket, in seq order, without holding the event loop for
 * long. A single `io.emit` to 10,000 sockets takes well over 100 ms of uninterrupted CPU
 * (BENCHMARKS.md), during which no op is read and no ack is sent. So sockets are spread over
 * shard rooms, and a large broadcast goes out about 128 sockets per event-loop turn, with
 * ops and acks served in between. Each update's broadcast finishes before the next one starts,
 * and when it finishes the ticker is told (`onDelivered`), which is what lets it conflate buys
 * instead of queueing updates faster than they can be sent.
 */
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
  /**
   * About how many sockets one event-loop turn sends to (default 128, about 2 ms here). A
   * turn sends at least one whole shard, so past shards × socketsPerTurn sockets (8,192 by
   * default) turns grow with the shards.
   */
  socketsPerTurn?: number;
}

/** What goes out to everyone, in the order it was published. */
type Outgoing =
  | { kind: 'update'; update: UpdatePayload; offset: string | undefined }
  | { kind: 'status'; status: StatusPayload };

/** Room names are server-side only; clients never see them. */
const shardRoom = (shard: number): string => `forkcast:shard:${shard}`;

export class UpdateBroadcaster {
  private readonly shards: number;
  private readonly socketsPerTurn: number;
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
  }

  /**
   * While a broadcast is under way, the update a socket connecting now must start from: the
   * one going out, which the socket's shard has had already (see assignShard); everything
   * queued after it reaches the socket in order. Null when idle: nothing is on its way, and
   * the ticker's own snapshot is the current state.
   */
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

  /**
   * Puts a new socket in a shard, in blocks: up to socketsPerTurn sockets that connect one after
   * another share a shard, then the next block starts in the emptiest one. Sockets that
   * connected together sit together in memory, so a turn walks warm memory; spread one by one,
   * each turn touched sockets from all over the heap and cost about twice as much. While a
   * broadcast is under way only the shards that have had the update qualify, so the socket gets
   * `inFlight` once (from the caller) and never twice.
   */
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

  /**
   * A status for everyone, sent after every update published before it. Sent at once it
   * could overtake an update still going out and contradict it: a "Stopped" followed by an
   * older update that says running.
   */
  publishStatus(status: StatusPayload): void {
    this.enqueue({ kind: 'status', status });
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
        // A status is one small emit: everyone at once, no turns needed.
        this.io.emit('status', outgoing.status);
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
      emitUpdate(this.io.local, update, offset);
      if (!this.finish(update, sockets)) return;
    }
  }

  /** Sends the update in flight to the next shards, up to about socketsPerTurn sockets. */
  private step(): void {
    this.turn = null;
    const sending = this.sending;
    if (!sending) return;
    const rooms = this.io.of('/').adapter.rooms;
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
    if (batch.length > 0) emitUpdate(this.io.local.to(batch), sending.update, sending.offset);
    sending.deliveries += sockets;
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

/**
 * In a cluster the adapter's stream offset goes out as the event's last argument, where
 * Socket.IO's client reads it, as the adapter itself would have sent it. (The contract's
 * event map knows the one payload; the offset is Socket.IO's, below the contract.)
 */
function emitUpdate(
  target: { emit(...args: unknown[]): unknown },
  update: UpdatePayload,
  offset: string | undefined,
): void {
  if (offset === undefined) target.emit('update', update);
  else target.emit('update', update, offset);
}
