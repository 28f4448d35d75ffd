/**
 * A deterministic clock and scheduler for the pure ticker model. Time only moves in advance();
 * due timers fire in order of due time, then of scheduling, each seeing now() at its due time.
 */
import type { Timers } from '../../ticker/model';

interface Scheduled {
  at: number;
  callback: () => void;
}

export class FakeTimers implements Timers {
  private time: number;
  private nextId = 1;
  /** Insertion order is scheduling order, which breaks ties between timers due at once. */
  private readonly timers = new Map<number, Scheduled>();

  constructor(startAt = 0) {
    this.time = startAt;
  }

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === 'number') this.timers.delete(handle);
  }

  /** Number of timers still scheduled. */
  get pending(): number {
    return this.timers.size;
  }

  /** Moves the clock forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    if (ms < 0) throw new Error('time only moves forward');
    const target = this.time + ms;
    for (;;) {
      const due = this.nextDue(target);
      if (!due) break;
      this.timers.delete(due.id);
      this.time = due.at;
      due.callback();
    }
    // A callback may itself have advanced the clock (a simulated stall); never move it back.
    this.time = Math.max(this.time, target);
  }

  /** Moves the clock to the absolute time `at`. */
  advanceTo(at: number): void {
    this.advance(at - this.time);
  }

  private nextDue(limit: number): (Scheduled & { id: number }) | undefined {
    let best: (Scheduled & { id: number }) | undefined;
    for (const [id, timer] of this.timers) {
      if (timer.at <= limit && (!best || timer.at < best.at)) best = { id, ...timer };
    }
    return best;
  }
}
