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
  private nextId = 1;
  /** Insertion order is scheduling order, which breaks ties between timers due at once. */
  private readonly timers = new Map<number, Scheduled>();

  constructor(private time = 0) {}

  now = (): number => this.time;

  setTimeout(callback: () => void, ms: number): number {
    this.timers.set(this.nextId, { at: this.time + Math.max(0, ms), callback });
    return this.nextId++;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
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
      let next: [number, Scheduled] | undefined;
      for (const entry of this.timers)
        if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      const [id, { at, callback }] = next;
      this.timers.delete(id);
      this.time = at;
      callback();
    }
    // A callback may itself have advanced the clock (a simulated stall); never move it back.
    this.time = Math.max(this.time, target);
  }

  /** Moves the clock to the absolute time `at`. */
  advanceTo(at: number): void {
    this.advance(at - this.time);
  }
}
