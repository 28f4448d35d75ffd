/** The price model: owns prices, the running flag and `seq`. Time comes in through `Timers` and
 * output goes out through `onUpdate`, so tests drive it with a fake clock. */
import type { Stock, UpdatePayload } from '../protocol/events';
import { BUY_CONFLATION_MS, DECAY, GROWTH, type StockName } from '../protocol/stocks';

export interface Timers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TickerModelOptions {
  state: UpdatePayload;
  tickMs: number;
  timers: Timers;
  /** Called with every update to broadcast, `seq` already advanced. */
  onUpdate: (update: UpdatePayload) => void;
  /** How long buys and ticks wait for `delivered` before going out anyway, so a lost notice can
   * slow the ticker but never stall it. */
  deliveryTimeoutMs?: number;
  /** The state holds buys nobody has been told about yet: broadcast it on the next turn. */
  unannounced?: boolean;
}

/** Longer than a large broadcast takes (BENCHMARKS.md), short enough that a lost notice is a
 * hiccup. */
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
  private readonly onUpdate: (update: UpdatePayload) => void;
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
    // The handed-over ts is the last update's, so the pace survives restarts (seq 0: none).
    this.lastTickAt = this.seq > 0 ? options.state.ts : Number.NEGATIVE_INFINITY;
    // Handed over while running: the next tick comes when the previous owner's would have.
    if (options.state.running) this.resume(this.untilNextTick());
    if (options.unannounced) this.scheduleBuyFlush();
  }

  snapshot(): UpdatePayload {
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
    // No sooner than a tick interval after the last, so toggling cannot speed the market up;
    // never inside start(), so the caller can acknowledge it first.
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

  /** Applies the buy at once (the returned price is final) and schedules its broadcast; refuses
   * it, changing nothing, if the price would no longer be finite. */
  buy(name: StockName): { ok: true; stock: Stock } | { ok: false; error: string } {
    const stock = this.stocks.find((candidate) => candidate.name === name);
    // The validator only lets listed names through, so a miss is a bug, not bad input.
    if (!stock) throw new Error(`no such stock: ${name}`);
    const price = stock.price + stock.price / GROWTH;
    // JSON cannot carry Infinity and the validators refuse it: refuse here rather than wedge
    // every later update.
    if (!Number.isFinite(price))
      return { ok: false, error: `${name} is at the highest price forkcast can show` };
    stock.price = price;
    this.scheduleBuyFlush();
    return { ok: true, stock: { ...stock } };
  }

  /** Updates up to `seq` are broadcast: buys held back go out now (or when the window ends). */
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
    // Leading edge: the first buy after a quiet spell goes out on the next turn.
    let flushAt = this.lastFlushAt + BUY_CONFLATION_MS;
    // Back-pressure: while an earlier update is still going out, buys wait and ride along
    // (`delivered` reschedules), so the rate follows what the server can deliver.
    if (this.awaitingDelivery)
      flushAt = Math.max(flushAt, this.lastEmitAt + this.deliveryTimeoutMs);
    const wait = Math.max(0, flushAt - this.timers.now());
    this.flushTimer = this.timers.setTimeout(() => this.flushBuys(), wait);
  }

  /** Until a tick interval after the last tick; at most tickMs, so a clock ahead of ours cannot
   * hold the ticker back. */
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
    // Back-pressure: the tick waits for the previous update's delivery (delivered() runs it),
    // at most deliveryTimeoutMs from when it was due.
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
    // After a stall, skip the missed ticks instead of firing them in a burst.
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
