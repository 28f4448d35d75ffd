/** Forks the ticker child, relays ops and updates, and replaces it with the last state if it dies
 * or hangs. With a store, acks and broadcasts wait for the commit; a child whose state cannot be
 * saved is replaced from disk, so a refused op is never applied later. */
import { fork as nodeFork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';

import type { UpdatePayload } from '../protocol/events';
import {
  parseChildMessage,
  type BuyReply,
  type ChildMessage,
  type OpReply,
  type ParentMessage,
  type ParentOpWithoutId,
  type RunReply,
} from '../protocol/ipc';
import type { StockName } from '../protocol/stocks';
import type { Logger } from './logger';
import { PendingRequests } from './pending';
import type { SavedState, StateStore } from './state-file';
import type { HostHealth, TickerHost, TickerHostEvents } from './ticker-host';

type ForkFn = (modulePath: string, args: readonly string[], options: ForkOptions) => ChildProcess;

export interface SupervisorOptions {
  /** Compiled entry of the ticker child (dist/ticker/main.js). */
  childPath: string;
  tickMs: number;
  initialState: UpdatePayload;
  /** The initial state holds acknowledged buys no update has carried yet (default false). */
  unannounced?: boolean;
  logger: Logger;
  fork?: ForkFn;
  /** How long an op (or a ping) may wait for the child's reply before the child is replaced. */
  opTimeoutMs?: number;
  /** How often an idle child is pinged; one silent for longer counts as unresponsive. */
  heartbeatMs?: number;
  /** How long a new child may take to say it is ready before it is killed and replaced. */
  readyTimeoutMs?: number;
  /** First restart delay; doubles after each crash up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A child that lived this long is considered healthy: the restart delay starts over. */
  healthyAfterMs?: number;
  /** How long close() waits for the child to exit before killing it. */
  closeTimeoutMs?: number;
  /** Called at every fork after the first (for the restarts metric). */
  onRestart?: () => void;
  /** Where acknowledged state is made durable (single node); without one, nothing waits. */
  store?: StateStore;
}

type Request = ParentOpWithoutId | { type: 'ping' };

const RESTARTING_ERROR = 'the ticker is restarting; try again in a moment';
const CLOSED_ERROR = 'the server is shutting down';
const DIED_ERROR = 'the ticker restarted before answering; try again';
const STUCK_ERROR =
  'the ticker did not answer in time; it is being restarted and the operation was not applied';
const NOT_SAVED_ERROR = 'the state could not be saved; the operation was not applied';

export class TickerSupervisor extends EventEmitter<TickerHostEvents> implements TickerHost {
  private readonly options: Required<
    Omit<SupervisorOptions, 'initialState' | 'unannounced' | 'store'>
  >;
  private readonly store: StateStore | undefined;
  /** The child's state as far as we know it: its last update plus the ops it acknowledged. */
  private state: UpdatePayload;
  /** The last update broadcast: what clients have seen, so what snapshot() shows. */
  private announced: UpdatePayload;
  /** The last state on disk: what a replacement child starts from. */
  private committed: SavedState;
  private child: ChildProcess | null = null;
  private ready = false;
  private lost = false;
  private closing = false;
  private spawnedAt = 0;
  private forks = 0;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private pinging = false;
  /** True between a buy's reply and the `update` that carries it. */
  private unannounced = false;
  /** Ops and pings sent to the child; null answers a ping. */
  private readonly pending = new PendingRequests<OpReply | null>();
  private readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: SupervisorOptions) {
    super();
    this.options = {
      fork: nodeFork,
      opTimeoutMs: 3_000,
      heartbeatMs: 1_000,
      readyTimeoutMs: 10_000,
      restartDelayMs: 100,
      maxRestartDelayMs: 5_000,
      healthyAfterMs: 10_000,
      closeTimeoutMs: 2_000,
      onRestart: () => undefined,
      ...options,
    };
    this.store = options.store;
    this.state = structuredClone(options.initialState);
    this.announced = structuredClone(options.initialState);
    this.unannounced = options.unannounced ?? false;
    this.committed = { ...structuredClone(options.initialState), unannounced: this.unannounced };
    this.restartDelay = this.options.restartDelayMs;
  }

  get pid(): number | undefined {
    return this.ready ? this.child?.pid : undefined;
  }

  health(): HostHealth {
    if (this.pid === undefined || this.pending.waitedLonger(this.options.heartbeatMs))
      return { status: 'down' };
    if (this.store && !this.store.healthy)
      return { status: 'degraded', details: { state: 'the state file cannot be written' } };
    return { status: 'ok' };
  }

  snapshot(): UpdatePayload {
    return { ...structuredClone(this.announced), running: this.state.running };
  }

  /** The child's state, acknowledged buys not yet broadcast included (a cluster saves it). */
  current(): UpdatePayload {
    return structuredClone(this.state);
  }

  open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('ticker supervisor is closed'));
    if (this.ready) return Promise.resolve();
    const ready = new Promise<void>((resolve, reject) =>
      this.readyWaiters.push({ resolve, reject }),
    );
    if (!this.child && !this.restartTimer) this.spawn();
    return ready;
  }

  start(): Promise<RunReply> {
    return this.request({ type: 'start' }) as Promise<RunReply>;
  }

  stop(): Promise<RunReply> {
    return this.request({ type: 'stop' }) as Promise<RunReply>;
  }

  buy(name: StockName): Promise<BuyReply> {
    return this.request({ type: 'buy', name }) as Promise<BuyReply>;
  }

  delivered(seq: number): void {
    const child = this.child;
    // Moot for a child not ready or going away: its replacement starts with nothing in flight.
    if (!this.ready || !child?.connected) return;
    child.send({ type: 'delivered', seq } satisfies ParentMessage, () => {
      // A send that fails means the child is exiting; onExit deals with that.
    });
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.ready = false;
    this.clearTimer('restartTimer');
    this.clearTimer('readyTimer');
    this.clearTimer('heartbeat');
    this.pending.answerAll({ ok: false, error: CLOSED_ERROR });
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(new Error(CLOSED_ERROR));
    await this.closeChild();
    if (!this.store) return;
    await this.store.settled();
    if (!this.store.healthy) throw new Error('the last state could not be saved');
  }

  private async closeChild(): Promise<void> {
    const child = this.child;
    if (!child || hasExited(child)) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Closing the IPC channel is the child's cue to exit cleanly; a kill is the fallback.
    if (child.connected) child.disconnect();
    else child.kill('SIGTERM');
    const deadline = setTimeout(() => {
      this.options.logger.warn({ pid: child.pid }, 'ticker child did not exit in time; killing it');
      child.kill('SIGKILL');
    }, this.options.closeTimeoutMs);
    await exited;
    clearTimeout(deadline);
  }

  private request(request: Request): Promise<OpReply | null> {
    const child = this.child;
    if (this.closing) return Promise.resolve({ ok: false, error: CLOSED_ERROR });
    if (!this.ready || !child) return Promise.resolve({ ok: false, error: RESTARTING_ERROR });
    const { id, answer } = this.pending.add(this.options.opTimeoutMs, (late) => {
      // Replies that arrived while busy are read in the poll phase, after timers: check then.
      setImmediate(() => {
        if (this.pending.has(late)) this.fault(child, 'it did not answer in time', STUCK_ERROR);
      });
    });
    child.send({ ...request, id }, (error) => {
      if (error) this.pending.answer(id, { ok: false, error: RESTARTING_ERROR });
    });
    return answer;
  }

  /** Pings an idle child, so one that hangs is found even when nobody sends ops. */
  private ping(): void {
    if (this.pinging || !this.ready) return;
    this.pinging = true;
    void this.request({ type: 'ping' }).then(() => (this.pinging = false));
  }

  /** Commits the current state, then tells `then` whether it is on disk. A failed write replaces
   * the child, so what it was told since the last commit is dropped. */
  private afterCommit(then: (saved: boolean) => void): void {
    const store = this.store;
    if (!store) return then(true);
    const saved: SavedState = { ...structuredClone(this.state), unannounced: this.unannounced };
    const child = this.child;
    store.commit(saved).then(
      () => {
        this.committed = saved;
        then(true);
      },
      () => {
        if (child) this.fault(child, 'its state could not be saved', NOT_SAVED_ERROR);
        then(false);
      },
    );
  }

  private announce(update: UpdatePayload): void {
    if (update.seq <= this.announced.seq) return;
    this.announced = update;
    this.emit('update', structuredClone(update));
  }

  private spawn(): void {
    this.restartTimer = null;
    const { logger } = this.options;
    // No inherited flags (inspector port, test loaders). WATCH_REPORT_DEPENDENCIES (`node
    // --watch`) would make the child report its modules over our IPC channel.
    const { WATCH_REPORT_DEPENDENCIES: _watch, ...env } = process.env;
    const child = this.options.fork(this.options.childPath, [], {
      env,
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    this.ready = false;
    this.spawnedAt = Date.now();
    if (this.forks++ > 0) this.options.onRestart();
    logger.info({ pid: child.pid }, 'ticker child forked');

    child.on('message', (raw) => {
      if (child === this.child) this.receive(raw);
    });
    child.on('error', (error) =>
      logger.error({ err: error, pid: child.pid }, 'ticker child error'),
    );
    child.once('exit', (code, signal) =>
      this.lose(child, signal ? `killed by ${signal}` : `exited with code ${String(code)}`),
    );

    this.readyTimer = setTimeout(() => {
      logger.error({ pid: child.pid }, 'ticker child did not become ready in time; killing it');
      child.kill('SIGKILL');
    }, this.options.readyTimeoutMs);
    // From the last known state, so a restart continues prices, running and seq exactly.
    child.send({
      type: 'init',
      state: this.state,
      tickMs: this.options.tickMs,
      unannounced: this.unannounced,
    } satisfies ParentMessage);
  }

  private receive(raw: unknown): void {
    const parsed = parseChildMessage(raw);
    if (!parsed.ok) {
      this.options.logger.error(
        { error: parsed.error },
        'ignored a malformed message from the ticker',
      );
      return;
    }
    const message: ChildMessage = parsed.value;
    switch (message.type) {
      case 'ready':
        this.clearTimer('readyTimer');
        this.state = message.state;
        this.ready = true;
        this.heartbeat = setInterval(() => this.ping(), this.options.heartbeatMs);
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
        if (this.lost) {
          this.lost = false;
          this.options.logger.info({ pid: this.child?.pid }, 'ticker child is back');
          this.emit('back');
        }
        return;
      case 'update': {
        const { update } = message;
        // A copy: the next reply changes `state` before this update is saved and sent.
        this.state = structuredClone(update);
        this.unannounced = false;
        this.afterCommit((saved) => saved && this.announce(update));
        return;
      }
      case 'reply': {
        const { reply } = message;
        const resolve = this.pending.take(message.id);
        if (!resolve || !reply.ok) return resolve?.(reply);
        this.remember(reply);
        this.afterCommit((saved) => resolve(saved ? reply : { ok: false, error: NOT_SAVED_ERROR }));
        return;
      }
      case 'pong':
        this.pending.answer(message.id, null);
        return;
      case 'rejected':
        this.options.logger.error({ error: message.error }, 'the ticker rejected a message');
        return;
      default: {
        const unreachable: never = message;
        throw new Error(`unhandled ticker message ${JSON.stringify(unreachable)}`);
      }
    }
  }

  /** Keeps what a reply acknowledged, so a child dying before its next `update` does not lose an
   * acknowledged buy. */
  private remember(reply: Extract<OpReply, { ok: true }>): void {
    if ('stock' in reply) {
      const { name, price } = reply.stock;
      this.state.stocks = this.state.stocks.map((stock) =>
        stock.name === name ? { name, price } : stock,
      );
      this.unannounced = true;
    }
    this.state.running = reply.running;
  }

  /** Kills a child that hangs or cannot be kept, and replaces it. */
  private fault(child: ChildProcess, reason: string, error: string): void {
    if (child !== this.child) return;
    this.lose(child, reason, error);
    child.kill('SIGKILL');
  }

  private lose(child: ChildProcess, reason: string, error = DIED_ERROR): void {
    if (child !== this.child) return;
    this.child = null;
    this.ready = false;
    this.clearTimer('readyTimer');
    this.clearTimer('heartbeat');
    if (this.closing) return;

    const { logger, restartDelayMs, maxRestartDelayMs, healthyAfterMs } = this.options;
    if (Date.now() - this.spawnedAt >= healthyAfterMs) this.restartDelay = restartDelayMs;
    const delay = this.restartDelay;
    // Back off so a crash loop cannot spin the CPU.
    this.restartDelay = Math.min(this.restartDelay * 2, maxRestartDelayMs);
    logger.error({ pid: child.pid, reason, restartInMs: delay }, 'ticker child lost; restarting');

    this.pending.answerAll({ ok: false, error });
    if (!this.lost) {
      this.lost = true;
      this.emit('lost', reason);
    }
    this.restartTimer = setTimeout(() => void this.respawn(), delay);
  }

  /** Starts the replacement from the committed state, rewritten first: a write that missed its
   * deadline may still have landed with refused ops. */
  private async respawn(): Promise<void> {
    if (this.store) {
      await this.store.settled();
      await this.store.commit(this.committed).catch(() => undefined);
      const { unannounced, ...state } = structuredClone(this.committed);
      this.state = state;
      this.unannounced = unannounced;
    }
    if (!this.closing && !this.child) this.spawn();
  }

  private clearTimer(name: 'restartTimer' | 'readyTimer' | 'heartbeat'): void {
    const timer = this[name];
    if (timer) clearTimeout(timer);
    this[name] = null;
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}
