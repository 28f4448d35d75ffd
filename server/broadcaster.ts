/**
 * Sends each ticker update to every socket, in seq order, without holding the event loop for
 * long. A single `io.emit` to 10,000 sockets takes well over 100 ms of uninterrupted CPU
 * (BENCHMARKS.md), during which no op is read and no ack is sent. So sockets are spread over
 * shard rooms, and a large broadcast goes out a few hundred sockets per event-loop turn, with
 * ops and acks served in between. Each update's broadcast finishes before the next one starts,
 * and when it finishes the ticker is told (`onDelivered`), which is what lets it conflate buys
 * instead of queueing updates faster than they can be sent.
 */
import type { UpdatePayload } from '../protocol/events';
import { HISTORY_LENGTH } from '../protocol/events';
import type { ForkcastIo } from './realtime';

export interface BroadcasterOptions {
  /** The state to greet sockets with until the first update (the ticker's snapshot). */
  initial: UpdatePayload;
  /** Called once an update has been handed to every socket, with how many got it. */
  onDelivered: (update: UpdatePayload, deliveries: number) => void;
  /** Shard rooms sockets are spread over (default 64). */
  shards?: number;
  /** About how many sockets one event-loop turn sends to (default 128, about 2 ms here). */
  socketsPerTurn?: number;
}

/** Room names are server-side only; clients never see them. */
const shardRoom = (shard: number): string => `forkcast:shard:${shard}`;

export class UpdateBroadcaster {
  private readonly shards: number;
  private readonly socketsPerTurn: number;
  private readonly queue: UpdatePayload[] = [];
  private readonly recent: UpdatePayload[] = [];
  private newest: UpdatePayload;
  /** The update being sent, the next shard to send it to, and how many got it so far. */
  private sending: { update: UpdatePayload; shard: number; deliveries: number } | null = null;
  private turn: NodeJS.Immediate | null = null;
  private joined = 0;
  private stopped = false;
  /** Inside onDelivered: a publish from there must queue, not start a second broadcast. */
  private finishing = false;

  constructor(
    private readonly io: ForkcastIo,
    private readonly options: BroadcasterOptions,
  ) {
    this.shards = options.shards ?? 64;
    this.socketsPerTurn = options.socketsPerTurn ?? 128;
    this.newest = options.initial;
  }

  /**
   * The newest update whose broadcast has begun. A socket connecting now starts from it: it
   * is not in the shards that update was already sent to, and every later update reaches it.
   */
  get latest(): UpdatePayload {
    return this.newest;
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
   * Puts a new socket in a shard, round robin. While a broadcast is under way only the shards
   * that have had the update already are candidates, so the socket gets `latest` once (from
   * the caller) and never twice.
   */
  admit(socket: { join(room: string): unknown }): void {
    const candidates = this.sending ? Math.max(1, this.sending.shard) : this.shards;
    void socket.join(shardRoom(this.joined++ % candidates));
  }

  publish(update: UpdatePayload): void {
    if (this.stopped) return;
    this.queue.push(update);
    if (!this.sending && !this.finishing) this.next();
  }

  /** Drops what is queued and stops sending (shutdown). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
    this.sending = null;
    if (this.turn) clearImmediate(this.turn);
    this.turn = null;
  }

  private next(): void {
    const update = this.queue.shift();
    if (!update) return;
    this.newest = update;
    this.recent.push(update);
    if (this.recent.length > HISTORY_LENGTH) this.recent.shift();

    const sockets = this.io.sockets.sockets.size;
    if (sockets <= this.socketsPerTurn) {
      // Small enough for one turn: one plain emit, encoded once, no rooms to walk.
      this.io.local.emit('update', update);
      this.finish(update, sockets);
      return;
    }
    this.sending = { update, shard: 0, deliveries: 0 };
    this.step();
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
    if (batch.length > 0) this.io.local.to(batch).emit('update', sending.update);
    sending.deliveries += sockets;
    if (sending.shard < this.shards) {
      this.turn = setImmediate(() => this.step());
      return;
    }
    this.sending = null;
    this.finish(sending.update, sending.deliveries);
  }

  private finish(update: UpdatePayload, deliveries: number): void {
    this.finishing = true;
    try {
      this.options.onDelivered(update, deliveries);
    } finally {
      this.finishing = false;
    }
    if (!this.stopped) this.next();
  }
}
