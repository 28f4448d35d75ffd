/** Requests waiting for one answer each, by id, with a deadline: the ops a ticker host has sent
 * (to its child, or to the leader) and not heard back about. Each is answered exactly once. */
export class PendingRequests<T> {
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (answer: T) => void; timer: NodeJS.Timeout; since: number }
  >();

  /** A new request's id and its answer; `late` runs if it is still unanswered after `ms`. */
  add(ms: number, late: (id: number) => void): { id: number; answer: Promise<T> } {
    const id = this.nextId++;
    const answer = new Promise<T>((resolve) => {
      const timer = setTimeout(() => late(id), ms);
      this.waiting.set(id, { resolve, timer, since: performance.now() });
    });
    return { id, answer };
  }

  has(id: number): boolean {
    return this.waiting.has(id);
  }

  /** Stops waiting for `id` and returns what answers it (undefined if answered already). */
  take(id: number): ((answer: T) => void) | undefined {
    const request = this.waiting.get(id);
    if (!request) return undefined;
    this.waiting.delete(id);
    clearTimeout(request.timer);
    return request.resolve;
  }

  answer(id: number, answer: T): void {
    this.take(id)?.(answer);
  }

  answerAll(answer: T): void {
    for (const id of [...this.waiting.keys()]) this.answer(id, answer);
  }

  /** Whether some request has waited longer than `ms`. */
  waitedLonger(ms: number): boolean {
    const now = performance.now();
    return [...this.waiting.values()].some((request) => now - request.since > ms);
  }
}
