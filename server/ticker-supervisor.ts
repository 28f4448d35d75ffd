/**
 * Forks the ticker child, feeds it ops, relays its updates, and brings it back with the last
 * known state whenever it dies on its own.
 */
import { fork as nodeFork, type ChildProcess, type ForkOptions } from 'node:child_process';
import { EventEmitter } from 'node:events';

import type { UpdatePayload } from '../protocol/events';
import type {
  BuyReply,
  ChildMessage,
  OpReply,
  ParentMessage,
  ParentOpWithoutId,
  RunReply,
  TickerState,
} from '../protocol/ipc';
import type { StockName } from '../protocol/stocks';
import { parseChildMessage } from '../protocol/validation';
import type { Logger } from './logger';
import type { HostHealth, TickerHost, TickerHostEvents } from './ticker-host';

export type ForkFn = (
  modulePath: string,
  args: readonly string[],
  options: ForkOptions,
) => ChildProcess;

export interface SupervisorOptions {
  /** Compiled entry of the ticker child (dist/ticker/main.js). */
  childPath: string;
  tickMs: number;
  initialState: TickerState;
  /** The initial state holds acknowledged buys no update has carried yet (default false). */
  unannounced?: boolean;
  logger: Logger;
  fork?: ForkFn;
  /** How long an op may wait for the child's reply. */
  opTimeoutMs?: number;
  /** How long a new child may take to say it is ready before it is killed and replaced. */
  readyTimeoutMs?: number;
  /** First restart delay; doubles after each crash up to `maxRestartDelayMs`. */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** A child that lived this long is considered healthy: the restart delay starts over. */
  healthyAfterMs?: number;
  /** How long close() waits for the child to exit before killing it. */
  closeTimeoutMs?: number;
  /** Called at every fork after the first: a child is being replaced (for the restarts metric). */
  onRestart?: () => void;
}

interface PendingOp {
  resolve: (reply: OpReply) => void;
  timer: NodeJS.Timeout;
}

const RESTARTING_ERROR = 'the ticker is restarting; try again in a moment';
const CLOSED_ERROR = 'the server is shutting down';

export class TickerSupervisor extends EventEmitter<TickerHostEvents> implements TickerHost {
  private readonly options: Required<Omit<SupervisorOptions, 'initialState' | 'unannounced'>>;
  private state: TickerState;
  private child: ChildProcess | null = null;
  private ready = false;
  private lost = false;
  private closing = false;
  private spawnedAt = 0;
  private forks = 0;
  private restartDelay: number;
  private restartTimer: NodeJS.Timeout | null = null;
  private readyTimer: NodeJS.Timeout | null = null;
  /** True between a buy's reply and the `update` that carries it. */
  private unannounced = false;
  private nextOpId = 1;
  private readonly pending = new Map<number, PendingOp>();
  private readyWaiters: { resolve: () => void; reject: (error: Error) => void }[] = [];

  constructor(options: SupervisorOptions) {
    super();
    this.options = {
      fork: nodeFork,
      opTimeoutMs: 5_000,
      readyTimeoutMs: 10_000,
      restartDelayMs: 100,
      maxRestartDelayMs: 5_000,
      healthyAfterMs: 10_000,
      closeTimeoutMs: 2_000,
      onRestart: () => undefined,
      ...options,
    };
    this.state = structuredClone(options.initialState);
    this.unannounced = options.unannounced ?? false;
    this.restartDelay = this.options.restartDelayMs;
  }

  get pid(): number | undefined {
    return this.ready ? this.child?.pid : undefined;
  }

  health(): HostHealth {
    return { status: this.pid === undefined ? 'down' : 'ok' };
  }

  snapshot(): UpdatePayload {
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
    return this.send({ type: 'start' }) as Promise<RunReply>;
  }

  stop(): Promise<RunReply> {
    return this.send({ type: 'stop' }) as Promise<RunReply>;
  }

  buy(name: StockName): Promise<BuyReply> {
    return this.send({ type: 'buy', name }) as Promise<BuyReply>;
  }

  delivered(seq: number): void {
    const child = this.child;
    // A notice to a child that is not ready or going away is moot: its replacement starts
    // with nothing in flight.
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
    this.failPending(CLOSED_ERROR);
    for (const waiter of this.readyWaiters.splice(0)) waiter.reject(new Error(CLOSED_ERROR));
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

  private send(op: ParentOpWithoutId): Promise<OpReply> {
    const child = this.child;
    if (this.closing) return Promise.resolve({ ok: false, error: CLOSED_ERROR });
    if (!this.ready || !child) return Promise.resolve({ ok: false, error: RESTARTING_ERROR });
    const id = this.nextOpId++;
    return new Promise<OpReply>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, error: 'the ticker did not answer in time' });
      }, this.options.opTimeoutMs);
      this.pending.set(id, { resolve, timer });
      const message = { ...op, id } as ParentMessage;
      child.send(message, (error) => {
        if (error) this.settle(id, { ok: false, error: RESTARTING_ERROR });
      });
    });
  }

  private settle(id: number, reply: OpReply): void {
    const op = this.pending.get(id);
    if (!op) return;
    this.pending.delete(id);
    clearTimeout(op.timer);
    op.resolve(reply);
  }

  private failPending(error: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, error });
  }

  private spawn(): void {
    this.restartTimer = null;
    const { logger } = this.options;
    // execArgv is cleared so that flags of this process (an inspector port, a test runner's
    // loaders) are not inherited by the child. Under `node --watch` (npm run dev) Node sets
    // WATCH_REPORT_DEPENDENCIES, which makes a process report its modules over its IPC
    // channel; the child's channel is ours, so that variable must not reach it.
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
    child.once('exit', (code, signal) => this.onExit(child, code, signal));

    this.readyTimer = setTimeout(() => {
      logger.error({ pid: child.pid }, 'ticker child did not become ready in time; killing it');
      child.kill('SIGKILL');
    }, this.options.readyTimeoutMs);
    // The child starts from the last state we know, so a restart continues prices, the
    // running flag and seq exactly where they were.
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
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
        if (this.lost) {
          this.lost = false;
          this.options.logger.info({ pid: this.child?.pid }, 'ticker child is back');
          this.emit('back');
        }
        return;
      case 'update':
        this.state = message.update;
        this.unannounced = false;
        this.emit('update', this.snapshot());
        this.emit('change');
        return;
      case 'reply':
        if (message.reply.ok) this.remember(message.reply);
        this.settle(message.id, message.reply);
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

  /**
   * Keeps what a successful reply says, so that a child dying before its next `update` does
   * not take an acknowledged buy with it: the replacement is handed the bought price.
   */
  private remember(reply: Extract<OpReply, { ok: true }>): void {
    if ('stock' in reply) {
      const { name, price } = reply.stock;
      this.state.stocks = this.state.stocks.map((stock) =>
        stock.name === name ? { name, price } : stock,
      );
      this.unannounced = true;
    } else if (this.state.running === reply.running) {
      return;
    }
    this.state.running = reply.running;
    this.emit('change');
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = null;
    this.ready = false;
    this.clearTimer('readyTimer');
    if (this.closing) return;

    const { logger, restartDelayMs, maxRestartDelayMs, healthyAfterMs } = this.options;
    if (Date.now() - this.spawnedAt >= healthyAfterMs) this.restartDelay = restartDelayMs;
    const delay = this.restartDelay;
    // Back off so that a child crashing in a loop cannot spin the CPU.
    this.restartDelay = Math.min(this.restartDelay * 2, maxRestartDelayMs);
    logger.error(
      { pid: child.pid, code, signal, restartInMs: delay },
      'ticker child exited; restarting',
    );

    this.failPending('the ticker restarted before answering; try again');
    if (!this.lost) {
      this.lost = true;
      this.emit('lost', signal ? `killed by ${signal}` : `exited with code ${String(code)}`);
    }
    this.restartTimer = setTimeout(() => this.spawn(), delay);
  }

  private clearTimer(name: 'restartTimer' | 'readyTimer'): void {
    const timer = this[name];
    if (timer) clearTimeout(timer);
    this[name] = null;
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}
