/** The price model: prices, running and `seq`. Timers and clock are injected: tests fake them. */
import type { UpdatePayload } from '../protocol/events';
import type { BuyReply, ParentMessage, RunReply } from '../protocol/ipc';
import { BUY_CONFLATION_MS, DECAY, GROWTH, LAST_SEQ, type StockName } from '../protocol/stocks';

export type Timers = Pick<typeof globalThis, 'setTimeout' | 'clearTimeout'> & { now(): number };

/** The parent's `init`; `unannounced` state is broadcast on the next turn. */
interface TickerModelOptions extends Omit<Extract<ParentMessage, { type: 'init' }>, 'type'> {
  timers: Timers;
  onUpdate: (update: UpdatePayload) => void;
}

/** How long an update waits for the previous one's `delivered`, so a lost notice slows the
 * ticker but never stalls it: longer than a large broadcast takes (BENCHMARKS.md). */
export const DELIVERY_TIMEOUT_MS = 1_000;

const SEQ_SPENT = 'the ticker has used up its sequence numbers';

export class TickerModel {
  private readonly state: UpdatePayload;
  /** One timer, always armed for whatever is due first: the next tick or the pending buys. */
  private timer?: ReturnType<typeof setTimeout>;
  /** Ticks keep to this grid, so they do not drift. */
  private nextTickAt = 0;
  /** Buys do not count: a start paces its first tick by the last real tick. */
  private lastTickAt: number;
  private buysPending: boolean;
  private lastFlushAt = -Infinity;
  private deliveredSeq: number;

  constructor(private readonly options: TickerModelOptions) {
    this.state = { ...structuredClone(options.state), running: false };
    this.deliveredSeq = this.state.seq;
    // The handed-over ts is the last update's, so the pace survives restarts (seq 0: none).
    this.lastTickAt = this.state.seq > 0 ? this.state.ts : -Infinity;
    this.buysPending = options.unannounced;
    // Handed over running: the next tick comes when the previous owner's would have.
    if (options.state.running) this.start();
    else this.schedule();
  }

  snapshot = (): UpdatePayload => structuredClone(this.state);

  /** Starting a running ticker is a no-op: there is only ever one tick loop. */
  start(): RunReply {
    if (this.state.running) return { ok: true, running: true, changed: false };
    if (this.state.seq === LAST_SEQ) return { ok: false, error: SEQ_SPENT };
    this.state.running = true;
    // An interval after the last tick: toggling cannot speed the market up; the caller acks first.
    this.nextTickAt = Math.max(this.options.timers.now(), this.lastTickAt + this.options.tickMs);
    this.schedule();
    return { ok: true, running: true, changed: true };
  }

  stop(): RunReply {
    const changed = this.state.running;
    this.state.running = false;
    this.schedule();
    return { ok: true, running: false, changed };
  }

  /** Applied at once (the price returned is final), broadcast later; JSON cannot carry Infinity. */
  buy(name: StockName): BuyReply {
    // The validator only lets listed names through.
    const stock = this.state.stocks.find((candidate) => candidate.name === name)!;
    const price = stock.price + stock.price / GROWTH;
    if (!Number.isFinite(price))
      return { ok: false, error: `${name} is at the highest price forkcast can show` };
    if (this.state.seq === LAST_SEQ) return { ok: false, error: SEQ_SPENT };
    stock.price = price;
    this.buysPending = true;
    this.schedule();
    return { ok: true, running: this.state.running, stock: { ...stock } };
  }

  /** Updates up to `seq` are broadcast: what was held back for them may go out. */
  delivered(seq: number): void {
    this.deliveredSeq = Math.max(this.deliveredSeq, Math.min(seq, this.state.seq));
    this.schedule();
  }

  dispose = (): void => this.options.timers.clearTimeout(this.timer);

  /** Back-pressure: while an update is out, the next waits for `delivered` (at most a timeout). */
  private due(): { tickAt: number; flushAt: number } {
    const wait = this.deliveredSeq < this.state.seq ? DELIVERY_TIMEOUT_MS : -Infinity;
    return {
      tickAt: this.state.running ? this.nextTickAt + Math.max(0, wait) : Infinity,
      // Leading edge: the first buy after a quiet spell goes out on the next turn.
      flushAt: this.buysPending
        ? Math.max(this.lastFlushAt + Math.max(BUY_CONFLATION_MS, wait), this.lastTickAt + wait)
        : Infinity,
    };
  }

  private schedule(): void {
    const { timers, tickMs } = this.options;
    this.dispose();
    // A clock stepped back (NTP, a resumed VM) must not hold ticks or buys back for as long.
    const now = timers.now();
    this.nextTickAt = Math.min(this.nextTickAt, now + tickMs);
    this.lastFlushAt = Math.min(this.lastFlushAt, now);
    this.lastTickAt = Math.min(this.lastTickAt, now);
    const at = Math.min(...Object.values(this.due()));
    if (at < Infinity) this.timer = timers.setTimeout(() => this.run(), Math.max(0, at - now));
  }

  private run(): void {
    const now = this.options.timers.now();
    const { tickAt, flushAt } = this.due();
    // A timer may fire a hair before Date.now() says it is due: then it is only re-armed.
    if (now >= tickAt) this.tick();
    else if (now >= flushAt) this.flush();
    this.schedule();
  }

  private tick(): void {
    // Pending buys go out first as their own update: a tick is always an update of its own.
    if (this.buysPending) this.flush();
    if (!this.state.running) return; // the flush took the last seq
    for (const stock of this.state.stocks) stock.price -= stock.price / DECAY;
    this.nextTickAt += this.options.tickMs;
    this.emit();
    this.lastTickAt = this.state.ts;
    // After a stall (sending may itself have taken a while), skip the missed ticks, no burst.
    const now = this.options.timers.now();
    if (this.nextTickAt <= now) this.nextTickAt = now + this.options.tickMs;
  }

  private flush(): void {
    this.buysPending = false;
    this.lastFlushAt = this.options.timers.now();
    this.emit();
  }

  private emit(): void {
    if (this.state.seq === LAST_SEQ) return; // a hand-made unannounced state: nothing left to number
    this.state.seq += 1;
    // The update with the last seq (the saved state's bound) stops the ticker, and says so.
    if (this.state.seq === LAST_SEQ) this.state.running = false;
    this.state.ts = this.options.timers.now();
    this.options.onUpdate(this.snapshot());
  }
}
