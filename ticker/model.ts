/**
 * The price model: owns prices, the running flag and `seq`. Pure by construction: time and
 * timers come in through `Timers`, output goes out through `onUpdate`, so tests drive it with a
 * fake clock and the child entry wires it to `setTimeout` and `process.send`.
 */
import type { Stock } from '../protocol/events';
import type { TickerState } from '../protocol/ipc';
import { BUY_CONFLATION_MS, DECAY, GROWTH, type StockName } from '../protocol/stocks';

export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TickerModelOptions {
  state: TickerState;
  tickMs: number;
  timers: Timers;
  /** Called with every update to broadcast, `seq` already advanced. */
  onUpdate: (update: TickerState) => void;
  /**
   * How long buys and ticks wait for the parent to report an update delivered before they
   * go out anyway, so a lost `delivered` notice can slow the ticker down but never stall it.
   */
  deliveryTimeoutMs?: number;
  /** The state holds buys nobody has been told about yet: broadcast it on the next turn. */
  unannounced?: boolean;
}

/**
 * Longer than a broadcast to 10,000 sockets takes here (under 0.5 s, BENCHMARKS.md), short
 * enough that a lost notice is a hiccup. At the default 1 s tick a tick rarely waits for the
 * tick before it; flow control matters after buys, and at faster ticks.
 */
export const DELIVERY_TIMEOUT_MS = 1_000;

export interface RunResult {
  running: boolean;
  /** False when the op was a no-op (start while running, stop while stopped). */
  changed: boolean;
}

export class TickerModel {
  private readonly stocks: Stock[];
  private running: boolean;
  private seq: number;
  private ts: number;
  private readonly tickMs: number;
  private readonly timers: Timers;
  private readonly onUpdate: (update: TickerState) => void;
  private readonly deliveryTimeoutMs: number;

  private tickTimer: unknown = null;
  /** When the next tick is due; ticks are scheduled against it so they do not drift. */
  private nextTickAt = 0;
  /** When the last tick went out (buys do not count): a start paces its first tick by it. */
  private lastTickAt: number;
  private flushTimer: unknown = null;
  private buysPending = false;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  /** The newest seq the parent has reported broadcast (see `delivered`). */
  private deliveredSeq: number;
  private lastEmitAt = Number.NEGATIVE_INFINITY;
  /** A tick came due while an update was still being delivered; delivered() runs it. */
  private tickWaiting = false;

  constructor(options: TickerModelOptions) {
    this.stocks = options.state.stocks.map((stock) => ({ ...stock }));
    this.running = false;
    this.seq = options.state.seq;
    this.ts = options.state.ts;
    this.tickMs = options.tickMs;
    this.timers = options.timers;
    this.onUpdate = options.onUpdate;
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? DELIVERY_TIMEOUT_MS;
    // Whatever came before this model was the previous owner's to deliver.
    this.deliveredSeq = this.seq;
    // A handed-over state's ts is its last update's, so the pace survives child restarts; it
    // may be a buy's, which only delays the first tick a little. Seq 0 has never been updated.
    this.lastTickAt = this.seq > 0 ? options.state.ts : Number.NEGATIVE_INFINITY;
    // A state handed over while running keeps running at the normal pace: the next tick comes
    // when the previous owner's would have, so a quick restart adds no extra tick and a
    // takeover after a long gap does not wait a whole interval more.
    if (options.state.running) this.resume(this.untilNextTick());
    if (options.unannounced) this.scheduleBuyFlush();
  }

  snapshot(): TickerState {
    return {
      stocks: this.stocks.map((stock) => ({ ...stock })),
      running: this.running,
      seq: this.seq,
      ts: this.ts,
    };
  }

  /** Starting a running ticker is a no-op: there is only ever one tick loop. */
  start(): RunResult {
    if (this.running) return { running: true, changed: false };
    // Not sooner than a tick interval after the last tick, so toggling start and stop cannot
    // speed the market up; and never inside start(), so the caller can acknowledge it first.
    this.resume(this.untilNextTick());
    return { running: true, changed: true };
  }

  stop(): RunResult {
    if (!this.running) return { running: false, changed: false };
    this.running = false;
    this.timers.clearTimeout(this.tickTimer);
    this.tickTimer = null;
    this.tickWaiting = false;
    return { running: false, changed: true };
  }

  /**
   * Applies the buy at once (the returned price is final) and schedules its broadcast; or
   * refuses it, changing nothing, when the price would no longer be a finite number.
   */
  buy(name: StockName): { ok: true; stock: Stock } | { ok: false; error: string } {
    const stock = this.stocks.find((candidate) => candidate.name === name);
    // The validator only lets listed names through, so a miss is a bug, not bad input.
    if (!stock) throw new Error(`no such stock: ${name}`);
    const price = stock.price + stock.price / GROWTH;
    // About 7,450 buys take a stock past the largest double (1.8e308). Infinity is not a
    // price JSON can carry, and the validators rightly refuse it, so such a buy is refused
    // here instead of wedging every later update.
    if (!Number.isFinite(price))
      return { ok: false, error: `${name} is at the highest price forkcast can show` };
    stock.price = price;
    this.scheduleBuyFlush();
    return { ok: true, stock: { ...stock } };
  }

  /**
   * The parent has broadcast every update up to `seq`. Buys held back while it was busy go
   * out now (or when the conflation window ends).
   */
  delivered(seq: number): void {
    if (seq <= this.deliveredSeq) return;
    this.deliveredSeq = Math.min(seq, this.seq);
    if (this.awaitingDelivery) return;
    if (this.tickWaiting) {
      // The tick that came due meanwhile runs now (and takes pending buys with it).
      this.timers.clearTimeout(this.tickTimer);
      this.tick();
      return;
    }
    if (this.buysPending) {
      this.timers.clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.scheduleBuyFlush();
    }
  }

  /** The parent has not yet reported the newest update delivered. */
  private get awaitingDelivery(): boolean {
    return this.deliveredSeq < this.seq;
  }

  /** Cancels every timer; the model can be dropped afterwards. */
  dispose(): void {
    this.timers.clearTimeout(this.tickTimer);
    this.timers.clearTimeout(this.flushTimer);
    this.tickTimer = null;
    this.flushTimer = null;
    this.tickWaiting = false;
  }

  private scheduleBuyFlush(): void {
    this.buysPending = true;
    if (this.flushTimer !== null) return;
    // Leading edge: the first buy after a quiet spell goes out on the next turn; buys that
    // follow within the window ride along in one trailing update.
    let flushAt = this.lastFlushAt + BUY_CONFLATION_MS;
    // Back-pressure: while the parent is still broadcasting an earlier update, buys wait for
    // it and ride along in one update. Under a storm the update rate then follows what the
    // server can deliver instead of queueing without bound (`delivered` reschedules).
    if (this.awaitingDelivery)
      flushAt = Math.max(flushAt, this.lastEmitAt + this.deliveryTimeoutMs);
    const wait = Math.max(0, flushAt - this.timers.now());
    this.flushTimer = this.timers.setTimeout(() => this.flushBuys(), wait);
  }

  /**
   * How long until a tick interval has passed since the last tick. At most tickMs, so a state
   * stamped by a clock ahead of ours cannot hold the ticker back.
   */
  private untilNextTick(): number {
    const dueIn = this.lastTickAt + this.tickMs - this.timers.now();
    return Math.min(this.tickMs, Math.max(0, dueIn));
  }

  private resume(firstTickIn: number): void {
    this.running = true;
    this.nextTickAt = this.timers.now() + firstTickIn;
    this.tickTimer = this.timers.setTimeout(() => this.tick(), firstTickIn);
  }

  private tick(): void {
    const now = this.timers.now();
    // Back-pressure for ticks too: while the parent is still sending the previous update,
    // the tick waits for it (delivered() runs it). A tick interval shorter than a broadcast
    // then slows the ticker down instead of queueing updates without bound. A lost notice
    // delays a tick by deliveryTimeoutMs at most, counted from when the tick was due.
    const giveUpAt = this.nextTickAt + this.deliveryTimeoutMs;
    if (this.awaitingDelivery && now < giveUpAt) {
      this.tickWaiting = true;
      this.tickTimer = this.timers.setTimeout(() => this.tick(), giveUpAt - now);
      return;
    }
    this.tickWaiting = false;
    // Pending buys go out first as their own update: a tick is always an update of its own.
    if (this.buysPending) this.flushBuys();
    for (const stock of this.stocks) stock.price -= stock.price / DECAY;
    this.emit();
    this.lastTickAt = this.ts;

    // Read again: sending the update may have taken a while (a stall).
    const sent = this.timers.now();
    this.nextTickAt += this.tickMs;
    // After a stall (a busy event loop, a suspended laptop) skip the missed ticks instead of
    // firing them in a burst.
    if (this.nextTickAt <= sent) this.nextTickAt = sent + this.tickMs;
    this.tickTimer = this.timers.setTimeout(() => this.tick(), this.nextTickAt - sent);
  }

  private flushBuys(): void {
    this.timers.clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (!this.buysPending) return;
    this.buysPending = false;
    this.lastFlushAt = this.timers.now();
    this.emit();
  }

  private emit(): void {
    this.seq += 1;
    this.ts = this.timers.now();
    this.lastEmitAt = this.ts;
    this.onUpdate(this.snapshot());
  }
}
