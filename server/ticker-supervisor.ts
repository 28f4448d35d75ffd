/** Forks the ticker child, relays ops and updates, and replaces it from the last saved state if it
 * dies, hangs or its state cannot be saved. Acks wait for the save; updates may go out before. */
import { fork as nodeFork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

import type { UpdatePayload } from '../protocol/events';
import { openingOf, parseChildMessage, seedTickerState, tickerState } from '../protocol/ipc';
import type { BuyReply, Op, OpReply, ParentMessage, RunReply } from '../protocol/ipc';
import { LAST_SEQ, type StockName } from '../protocol/stocks';
import type { SavedState } from '../protocol/validation';
import { PATHS } from './paths';
import type { StateStore } from './state-file';
import { historyTo, type HostHealth, type TickerHost, type TickerHostEvents } from './ticker-host';

export interface SupervisorOptions {
  tickMs: number;
  /** Default: the seed prices, never started. */
  initialState?: UpdatePayload & Partial<SavedState>;
  logger: Logger;
  fork?: (modulePath: string, args: readonly string[], options: ForkOptions) => ChildProcess;
  /** Called at every fork after the first (the restarts metric). */
  onRestart?: () => void;
  /** Where acknowledged state is made durable; without one, nothing waits. */
  store?: StateStore;
}

/** A request unanswered past HEARTBEAT_MS shows as down; past OP_TIMEOUT_MS, the child goes. */
const HEARTBEAT_MS = 1_000;
const OP_TIMEOUT_MS = 3_000;
const READY_TIMEOUT_MS = 10_000;
const FIRST_RESTART_MS = 100;
const MAX_RESTART_MS = 5_000;
const HEALTHY_MS = 10_000;
const CLOSE_TIMEOUT_MS = 2_000;
/** A slow store's save reserves this many seqs ahead; within them, ticks are saved this often. */
const RESERVED_SEQS = 10;
const TICK_SAVE_MS = 1_000;

const RESTARTING_ERROR = 'the ticker is restarting; try again in a moment';
export const CLOSED_ERROR = 'the server is shutting down';
const DIED_ERROR = 'the ticker restarted before answering; try again';
const STUCK_ERROR = 'the ticker did not answer in time and is restarting; the op was not applied';
const NOT_SAVED_ERROR = 'the state could not be saved; the operation was not applied';

const refused = (error: string): OpReply => ({ ok: false, error });
/** What answers an op, or a ping (with null: its pong). */
type Answer = (reply: OpReply | null) => void;

export class TickerSupervisor extends EventEmitter<TickerHostEvents> implements TickerHost {
  /** The child's state as far as we know it: its last update plus the ops it acknowledged. */
  private state: SavedState;
  /** The last update broadcast (snapshot() shows it); the last state saved (a new child's). */
  private announced: UpdatePayload;
  private committed: SavedState;
  /** The seq the last save reserved, and the saves under way (while any is, updates wait for
   * theirs: it may be an op's); `saved` settles once the last one's outcome is applied. */
  private reserved = 0;
  private savedAt = -Infinity;
  private saving = 0;
  private saved = Promise.resolve();
  private child: ChildProcess | null = null;
  private ready = false;
  private lost = false;
  private closing = false;
  private spawnedAt = 0;
  private restartDelay = FIRST_RESTART_MS;
  /** The watchdog while there is a child, else the restart's delay. */
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  /** The requests sent to the child and not answered yet, oldest first. */
  private readonly waiting = new Map<number, { answer: Answer; since: number }>();
  private booting: Promise<void> | undefined;
  private opened: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(private readonly options: SupervisorOptions) {
    super();
    const initial = options.initialState ?? { ...seedTickerState(Date.now()), unannounced: false };
    this.state = { ...initial, unannounced: !!initial.unannounced, opening: openingOf(initial) };
    this.announced = tickerState(initial);
    this.committed = { ...this.state };
  }

  get pid(): number | undefined {
    return this.ready ? this.child?.pid : undefined;
  }

  health(): HostHealth {
    if (!this.ready || this.waitedMs() > HEARTBEAT_MS) return { status: 'down' };
    const failing = this.options.store?.healthy === false && 'the state file cannot be written';
    return failing ? { status: 'degraded', details: { state: failing } } : { status: 'ok' };
  }

  snapshot = () => ({ ...structuredClone(this.announced), running: this.state.running });

  greeting = () => ({ history: this.shown().history ?? [], opening: openingOf(this.committed) });

  open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('ticker supervisor is closed'));
    return (this.booting ??= new Promise((resolve, reject) => {
      this.opened = { resolve, reject };
      this.spawn();
    }));
  }

  start = () => this.request({ type: 'start' }) as Promise<RunReply>;
  stop = () => this.request({ type: 'stop' }) as Promise<RunReply>;
  buy = (name: StockName) => this.request({ type: 'buy', name }) as Promise<BuyReply>;

  delivered(seq: number): void {
    // A replacement starts with nothing in flight; a failed send means the child is exiting.
    if (this.ready) this.child?.send({ type: 'delivered', seq } satisfies ParentMessage, () => 0);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.ready = false;
    clearTimeout(this.timer);
    this.answerAll(CLOSED_ERROR);
    this.opened?.reject(new Error(CLOSED_ERROR));
    const { child, options } = this;
    if (child?.pid) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      // Closing the IPC channel is the child's cue to exit cleanly; a kill is the fallback.
      if (child.connected) child.disconnect();
      const deadline = setTimeout(() => {
        options.logger.warn({ pid: child.pid }, 'ticker child did not exit in time; killing it');
        child.kill('SIGKILL');
      }, CLOSE_TIMEOUT_MS);
      await exited.finally(() => clearTimeout(deadline));
    }
    await options.store?.settled();
    await this.saved;
    // The true seq goes down, so that a restart skips none.
    const last = this.shown();
    if (this.reserved > last.seq) await options.store?.commit(last).catch(() => undefined);
    // A hung write waits for the shutdown deadline's kill: exit() would wait for it for good.
    await options.store?.settled();
    if (options.store?.healthy === false) throw new Error('the last state could not be saved');
  }

  private request(request: Op | { type: 'ping' }): Promise<OpReply | null> {
    const child = this.child;
    if (this.closing || !this.ready || !child)
      return Promise.resolve(refused(this.closing ? CLOSED_ERROR : RESTARTING_ERROR));
    const id = this.nextId++;
    return new Promise((answer) => {
      this.waiting.set(id, { answer, since: performance.now() });
      child.send({ ...request, id }, (err) => err && this.take(id)?.(refused(RESTARTING_ERROR)));
    });
  }

  private take(id: number): Answer | undefined {
    const request = this.waiting.get(id);
    return this.waiting.delete(id) ? request?.answer : undefined;
  }

  private answerAll(error: string): void {
    for (const { answer } of this.waiting.values()) answer(refused(error));
    this.waiting.clear();
  }

  private waitedMs(): number {
    const [oldest] = this.waiting.values();
    return oldest ? performance.now() - oldest.since : 0;
  }

  /** Replaces a child that hangs, and pings an idle one so that a hang shows without ops. */
  private watch(child: ChildProcess): void {
    if (!this.ready) {
      if (performance.now() - this.spawnedAt >= READY_TIMEOUT_MS)
        this.lose(child, 'it did not become ready in time');
    } else if (this.waitedMs() >= OP_TIMEOUT_MS) {
      // Replies that came while this process was busy are read after timers: look again then.
      setImmediate(() => {
        if (this.waitedMs() >= OP_TIMEOUT_MS)
          this.lose(child, 'it did not answer in time', STUCK_ERROR);
      });
    } else if (this.waiting.size === 0) void this.request({ type: 'ping' });
  }

  /** Saves `state` (a shallow copy: nested values are replaced, never changed), then tells `then`
   * if it is; a failed save drops the child and its news. A slow store gets a later seq, marked
   * unannounced: the updates up to it may go out unsaved, and a restart numbers its prices after. */
  private afterCommit(then: (saved: boolean) => void, state = { ...this.state }): Promise<void> {
    const { store } = this.options;
    const child = this.child;
    const ahead = store?.slow ? Math.min(RESERVED_SEQS, LAST_SEQ - 1 - state.seq) : 0;
    const written = ahead > 0 ? { ...state, seq: state.seq + ahead, unannounced: true } : state;
    this.savedAt = performance.now();
    this.saving++;
    const saving = (store?.commit(written) ?? Promise.resolve()).finally(() => this.saving--);
    return (this.saved = saving.then(
      () => {
        [this.reserved, this.committed] = [written.seq, state];
        then(true);
      },
      () => {
        if (child) this.lose(child, 'its state could not be saved', NOT_SAVED_ERROR);
        then(false);
      },
    ));
  }

  private spawn(): void {
    const { logger, fork = nodeFork, tickMs } = this.options;
    // No inherited flags (--inspect's port), nor --watch's WATCH_REPORT_DEPENDENCIES (on our IPC).
    const { WATCH_REPORT_DEPENDENCIES: _watch, ...env } = process.env;
    const child = fork(PATHS.tickerChild, [], {
      env,
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    this.spawnedAt = performance.now();
    logger.info({ pid: child.pid }, 'ticker child forked');
    child.on('message', (raw) => child === this.child && this.receive(raw));
    // A fork that failed (EMFILE, ENOMEM) has no 'exit' to come, and maybe no channel to send on.
    child.on('error', (err) => this.lose(child, `error: ${err.message}`));
    child.once('exit', (code, signal) =>
      this.lose(child, signal ? `killed by ${signal}` : `exited with code ${String(code)}`),
    );
    this.timer = setInterval(() => this.watch(child), HEARTBEAT_MS);
    // From the last known state, so a restart continues prices, running and seq exactly.
    const state = tickerState(this.state);
    const init = { type: 'init', state, tickMs, unannounced: this.state.unannounced } as const;
    if (child.connected) child.send(init satisfies ParentMessage);
  }

  private receive(raw: unknown): void {
    const { logger } = this.options;
    const parsed = parseChildMessage(raw);
    if (!parsed.ok)
      return logger.error({ error: parsed.error }, 'ignored a malformed message from the ticker');
    const message = parsed.value;
    switch (message.type) {
      case 'ready':
        this.state = { ...this.state, ...message.state };
        this.ready = true;
        this.opened?.resolve();
        if (this.lost) {
          this.lost = false;
          logger.info({ pid: this.child?.pid }, 'ticker child is back');
          this.emit('back');
        }
        return;
      case 'update': {
        const { update } = message;
        const history = historyTo(this.state.history ?? [], update);
        this.state = { ...this.state, ...update, unannounced: false, history };
        const announce = (saved: boolean) => {
          if (!saved || update.seq <= this.announced.seq) return;
          this.announced = update;
          this.emit('update', structuredClone(update));
        };
        if (this.saving === 0 && update.seq <= this.reserved) {
          announce(true);
          // Ops are saved before their acks; a crash may lose ticks' prices, never their seqs.
          if (update.seq < this.reserved && performance.now() - this.savedAt < TICK_SAVE_MS) return;
        }
        return void this.afterCommit(announce);
      }
      case 'reply': {
        const { reply } = message;
        const answer = this.take(message.id);
        if (!answer || !reply.ok) return answer?.(reply);
        // Kept, so that a child dying before its next update does not lose an acknowledged buy.
        if ('stock' in reply) {
          const { name, price } = reply.stock;
          this.state.stocks = this.state.stocks.map((s) => (s.name === name ? { name, price } : s));
          this.state.unannounced = true;
        }
        this.state.running = reply.running;
        // A real start: "change since open" counts from here.
        const opened = 'changed' in reply && reply.changed && reply.running;
        const opening = { stocks: this.state.stocks, seq: this.state.seq, ts: Date.now() };
        if (opened) this.state.opening = opening;
        return void this.afterCommit((saved) => {
          if (saved && opened) this.emit('opening', opening);
          answer(saved ? reply : refused(NOT_SAVED_ERROR));
        });
      }
      case 'pong':
        return this.take(message.id)?.(null);
      case 'rejected':
        return logger.error({ error: message.error }, 'the ticker rejected a message');
      default:
        throw new Error(`unhandled ticker message ${JSON.stringify(message satisfies never)}`);
    }
  }

  /** The saved state, or the updates sent since (they carry every op saved before them). */
  private shown(): SavedState {
    const { announced: sent, committed } = this;
    if (sent.seq <= committed.seq) return committed;
    const history = this.state.history?.filter((update) => update.seq <= sent.seq);
    return { ...committed, ...sent, history, unannounced: false };
  }

  /** Kills the child (if alive) and schedules a replacement, backed off against a crash loop. */
  private lose(child: ChildProcess, reason: string, error = DIED_ERROR): void {
    const { logger } = this.options;
    if (child !== this.child) return;
    this.child = null;
    this.ready = false;
    clearInterval(this.timer);
    if (this.closing) return;
    if (child.pid) child.kill('SIGKILL'); // no pid (a failed fork): Node 20 would signal pid 0
    if (performance.now() - this.spawnedAt >= HEALTHY_MS) this.restartDelay = FIRST_RESTART_MS;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(delay * 2, MAX_RESTART_MS);
    logger.error({ pid: child.pid, reason, restartInMs: delay }, 'ticker child lost; restarting');
    this.answerAll(error);
    if (!this.lost) this.emit('lost', reason);
    this.lost = true;
    this.timer = setTimeout(() => void this.respawn(), delay);
  }

  /** From what clients saw, written first: a late write may have landed with refused ops. */
  private async respawn(): Promise<void> {
    const { store } = this.options;
    if (store) await store.settled().then(() => this.saved);
    if (this.closing) return;
    this.state = { ...this.shown() };
    if (store) await this.afterCommit(() => undefined);
    if (this.closing) return;
    this.options.onRestart?.();
    this.spawn();
  }
}
