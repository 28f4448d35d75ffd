/** Items as they arrive, and waits with a deadline for matching ones, checked on each: no polls. */
export { setTimeout as delay } from 'node:timers/promises';

export interface WaitOptions {
  /** Only items at this index or later count (use `mark` taken before the action). */
  from?: number;
  timeoutMs: number;
  /** What is awaited, for the failure message. */
  what: string;
}

/** A check of an item; a type guard narrows what the wait resolves with. */
type Match<T, S extends T> = ((item: T) => item is S) | ((item: T) => boolean);

export class Recorder<T> {
  readonly items: T[] = [];
  /** Each pending wait's check: it settles the wait once enough items match, or with `error`. */
  private readonly waiters = new Set<(error?: Error) => void>();

  push(item: T): void {
    this.items.push(item);
    for (const check of [...this.waiters]) check();
  }

  /** The index the next item will get; wait or look `from` here to see only later items. */
  get mark(): number {
    return this.items.length;
  }

  since(from: number): T[] {
    return this.items.slice(from);
  }

  /** Resolves with the first matching item at or after `from`, or rejects at the deadline. */
  waitFor<S extends T = T>(predicate: Match<T, S>, options: WaitOptions): Promise<S> {
    return this.waitForCount(1, predicate, options).then((found) => found[0]!);
  }

  /** Resolves with the first `count` matching items at or after `from`. */
  waitForCount<S extends T = T>(count: number, predicate: Match<T, S>, options: WaitOptions) {
    const { from = 0, timeoutMs, what } = options;
    return new Promise<S[]>((resolve, reject) => {
      const check = (error?: Error): void => {
        const found = this.items.slice(from).filter(predicate) as S[];
        if (!error && found.length < count) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else resolve(found.slice(0, count));
      };
      const timer = setTimeout(() => {
        const recent = JSON.stringify(this.items.slice(Math.max(from, this.mark - 5)));
        const last = `last items: ${recent.slice(0, 600)}`;
        check(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${last}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  /** Rejects every pending wait (used when the source of items goes away). */
  failAll(reason: string): void {
    for (const check of [...this.waiters]) check(new Error(reason));
  }
}

/** Resolves with the promise's value, or rejects after `ms` with a message naming `what`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
