/** A cluster node's ticker host. The lease holder runs the TickerSupervisor, whose store is the
 * state key, written fenced by the lease: acks and updates wait for it, so what clients see is
 * what the next leader resumes from. Other nodes forward ops with serverSideEmitWithAck. */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';

import * as cluster from '../../protocol/cluster';
import type { StatusPayload, UpdatePayload } from '../../protocol/events';
import type { BuyReply, OpReply, RunReply } from '../../protocol/ipc';
import type { StockName } from '../../protocol/stocks';
import { parseStatusPayload, parseUpdatePayload } from '../../protocol/validation';
import type { ForkcastIo } from '../io';
import type { Logger } from '../logger';
import type { SavedState, StateStore } from '../state-file';
import type { HostHealth, TickerHost, TickerHostEvents } from '../ticker-host';
import { TickerSupervisor } from '../ticker-supervisor';
import { clusterKeys, LeaderLease, type RedisClient } from './lease';
import { openStream, type Stream } from './stream';

/** A takeover within 3 s of the leader dying; three renewals per TTL ride out a late one. The
 * leader steps down at the lease's end by its own clock; Redis expires it no sooner. */
const LEASE_TTL_MS = 1_500;
const RENEW_EVERY_MS = 500;
const CAMPAIGN_EVERY_MS = 200;
/** A Redis command slower than this fails: catches a Redis that stalls with the connection up. */
const REDIS_TIMEOUT_MS = 1_000;
/** socket.io-adapter waits a fixed 5 s for every node's answer; this also bounds a wait for Redis
 * before the emit goes out (the adapter's connection queues commands while Redis is away). */
const FORWARD_TIMEOUT_MS = 6_000;
const OP_EVENT = 'forkcast:op';
const KEYS = clusterKeys();

const REDIS_DOWN = 'the cluster cannot reach Redis right now; try again in a moment';
const NO_LEADER = 'no ticker leader is elected right now; try again in a moment';
const MOVED = 'the ticker moved to another node meanwhile; the operation may not have been applied';
const NO_ANSWER =
  'the ticker leader did not answer in time; the operation may not have been applied';
const CLOSED = 'the server is shutting down';

export interface ClusterHostOptions {
  /** The node's Socket.IO server (read at open(), after createApp), on the streams adapter. */
  io: () => ForkcastIo;
  childPath: string;
  tickMs: number;
  logger: Logger;
  /** Where a cluster whose Redis holds no state yet starts from. */
  seed: UpdatePayload;
  onRestart?: () => void;
}

export class ClusterTickerHost extends EventEmitter<TickerHostEvents> implements TickerHost {
  /** Fresh per process, so a restarted node is a new lease holder. */
  readonly nodeId = randomUUID();
  private readonly lease: LeaderLease;
  private readonly logger: Logger;
  /** The latest update read from the stream (its broadcast here may still be queued). */
  private state: UpdatePayload;
  private stream: Stream | null = null;
  private leading = false;
  /** Bumped at every change of role: work begun in an earlier term drops its result. */
  private term = 0;
  private supervisor: TickerSupervisor | null = null;
  /** The holder the last campaign saw (this node while it leads). */
  private holder: string | null = null;
  /** performance.now() until which the lease is surely ours (while leading). */
  private validUntil = 0;
  private opened: Promise<void> | null = null;
  private closing = false;
  /** Aborted by close(): ends a wait in open(). */
  private readonly closed = new AbortController();
  private wake = (): void => undefined;

  constructor(
    private readonly options: ClusterHostOptions,
    /** `commands` fail at once while Redis is away; `adapter` (the adapter's) queues them, so a
     * forwarded op would wait; `reader` blocks on the stream. */
    private readonly redis: Record<'commands' | 'adapter' | 'reader', RedisClient>,
    private readonly streamMaxLen: number,
  ) {
    super();
    this.logger = options.logger;
    this.lease = new LeaderLease(redis.commands, KEYS, this.nodeId, LEASE_TTL_MS);
    this.state = structuredClone(options.seed);
  }

  get pid(): number | undefined {
    return this.leading ? this.supervisor?.pid : undefined;
  }

  snapshot(): UpdatePayload {
    return structuredClone(this.state);
  }

  health(): HostHealth {
    const redis = this.redisUp();
    const stale = this.pid === undefined || performance.now() >= this.validUntil;
    const status = !redis || this.holder === null || (this.leading && stale) ? 'degraded' : 'ok';
    const role = this.leading ? 'leader' : 'follower';
    const details = { node: this.nodeId, role, redis: redis ? 'up' : 'down', leader: this.holder };
    return { status, details };
  }

  open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('cluster ticker host is closed'));
    this.opened ??= this.begin();
    return this.opened;
  }

  start = (): Promise<RunReply> => this.op({ type: 'start' }) as Promise<RunReply>;
  stop = (): Promise<RunReply> => this.op({ type: 'stop' }) as Promise<RunReply>;
  buy = (name: StockName): Promise<BuyReply> => this.op({ type: 'buy', name }) as Promise<BuyReply>;

  broadcastStatus(status: StatusPayload): void {
    this.stream?.append('status', status).catch((error: unknown) => {
      this.logger.error({ err: error }, 'could not send a status');
    });
  }

  delivered(seq: number): void {
    // The leader's own sockets stand for the cluster: its child paces itself on them.
    if (this.leading) this.supervisor?.delivered(seq);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.closed.abort();
    this.stream?.close();
    // Forwarded ops are still answered (null) until the adapter closes: a node that stays silent
    // holds every forwarded op up for socket.io-adapter's 5 s.
    this.wake();
    if (!this.leading) return;
    await this.stepDown('shutting down');
    // Hand over at once instead of making the cluster wait for the lease to run out.
    await within(this.lease.release(), REDIS_TIMEOUT_MS, 'releasing the lease').catch(
      (error: unknown) => this.logger.warn({ err: error }, 'could not release the leader lease'),
    );
  }

  private redisUp(): boolean {
    return this.redis.commands.isReady && this.redis.adapter.isReady;
  }

  /** Greets from the stored state once this node reads the stream, so no update falls between. */
  private async begin(): Promise<void> {
    this.options.io().on(OP_EVENT, this.onForwarded);
    this.stream = await openStream(this.options.io(), {
      writer: this.redis.commands,
      reader: this.redis.reader,
      maxLen: this.streamMaxLen,
      logger: this.logger,
      onEntry: (event, payload, offset) => {
        const parsed =
          event === 'update' ? parseUpdatePayload(payload) : parseStatusPayload(payload);
        if (!parsed.ok) return this.logger.error({ error: parsed.error }, 'ignored a bad entry');
        if (!('seq' in parsed.value)) {
          // Start and stop reach other nodes as statuses only.
          this.state.running = parsed.value.running;
          return this.emit('status', parsed.value, offset);
        }
        // One sent already is dropped: held up in Redis in an outage, a new leader may resend it.
        if (parsed.value.seq <= this.state.seq) return;
        this.state = parsed.value;
        this.emit('update', this.snapshot(), offset);
      },
    });
    const stored = await this.readState();
    this.elect().catch((error: unknown) =>
      this.logger.error({ err: error }, 'the election stopped'),
    );
    if (stored?.unannounced && stored.seq >= this.state.seq) {
      // Its prices hold acked buys never broadcast under its seq: greet from the update that
      // carries them (the leader's next, or a new leader's first).
      this.logger.info({ seq: stored.seq }, 'waiting for the update that carries the saved buys');
      while (this.state.seq <= stored.seq)
        await once(this, 'update', { signal: this.closed.signal });
    } else if (stored && stored.seq > this.state.seq) this.state = withoutStorage(stored);
    else if (stored?.seq === this.state.seq) this.state.running = stored.running;
  }

  /** The election, one loop: a follower tries for the lease; the leader renews it, waiting no
   * longer than it lasts, and steps down when another node holds it or it ran out. */
  private async elect(): Promise<void> {
    while (!this.closing) {
      const term = this.term;
      const sentAt = performance.now();
      try {
        if (this.leading) {
          const left = this.validUntil - sentAt;
          const held = await within(this.lease.renew(), left, 'renewing the lease');
          if (held && term === this.term) this.validUntil = sentAt + LEASE_TTL_MS;
          if (!held && term === this.term) await this.stepDown('another node holds the lease');
        } else if (this.redisUp()) {
          const lease = await within(this.lease.tryAcquire(), REDIS_TIMEOUT_MS, 'seeking lease');
          this.holder = lease.held ? this.nodeId : lease.holder;
          if (lease.held && this.closing) await this.lease.release();
          else if (lease.held) {
            this.validUntil = sentAt + LEASE_TTL_MS;
            // Not awaited: forking the child takes a while, and the lease is renewed meanwhile.
            void this.lead(lease.epoch);
          }
        }
      } catch (error) {
        this.logger.warn({ err: error, leading: this.leading }, 'leader election round failed');
        if (performance.now() >= this.validUntil) await this.stepDown('the lease ran out');
      }
      const left = this.validUntil - performance.now();
      const pause = this.leading ? Math.max(0, Math.min(RENEW_EVERY_MS, left)) : CAMPAIGN_EVERY_MS;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, pause);
      });
    }
  }

  private async lead(epoch: number): Promise<void> {
    const term = ++this.term;
    this.leading = true;
    try {
      // Redis is authoritative; if it lost the state, the newest update seen here beats the seed.
      const stored = await this.readState();
      const resume =
        stored && stored.seq >= this.state.seq ? stored : { ...this.state, unannounced: false };
      // Claims the state for this term before anything is done with it.
      const store = this.store(term, epoch);
      await store.commit(resume);
      // The last leader may have died between saving an update and sending it: sent before the
      // child's first. Not an unannounced state: the child sends those prices under a new seq.
      if (term === this.term && resume.seq > this.state.seq && !resume.unannounced)
        await this.stream?.append('update', withoutStorage(resume));
      if (term !== this.term) return;
      const supervisor = new TickerSupervisor({
        childPath: this.options.childPath,
        tickMs: this.options.tickMs,
        initialState: withoutStorage(resume),
        unannounced: resume.unannounced,
        logger: this.logger.child({ part: 'ticker' }),
        onRestart: () => this.options.onRestart?.(),
        store,
      });
      this.supervisor = supervisor;
      // Saved but not sent would leave a gap: the term ends, and the next leader sends it.
      supervisor.on('update', (update) => {
        this.stream?.append('update', update).catch(async (error: unknown) => {
          this.logger.error({ err: error, seq: update.seq }, 'could not send an update');
          if (term === this.term) await this.stepDown('the stream did not take an update');
        });
      });
      supervisor.on('lost', (reason) => this.emit('lost', reason));
      supervisor.on('back', () => this.emit('back'));
      this.logger.info({ epoch, seq: resume.seq, running: resume.running }, 'leading the ticker');
      await supervisor.open();
    } catch (error) {
      this.logger.error({ err: error }, 'could not take over as the ticker leader');
      if (term === this.term) await this.stepDown('the takeover failed');
    }
  }

  /** The supervisor's store: the state key, written in this term only and fenced by the lease. A
   * refused write ends the term before the supervisor hears of it, so it reports no child lost. */
  private store(term: number, epoch: number): StateStore {
    let last: Promise<unknown> = Promise.resolve();
    const write = async (saved: SavedState): Promise<void> => {
      const state = JSON.stringify({ ...saved, epoch });
      const ok =
        term === this.term &&
        (await within(this.lease.writeState(epoch, state), REDIS_TIMEOUT_MS, 'saving').catch(
          (error: unknown) => this.logger.error({ err: error }, 'could not save the state'),
        ));
      if (ok) return;
      if (term === this.term) void this.stepDown('the state could not be saved');
      throw new Error('the state could not be saved under the lease');
    };
    return {
      // A failed write ends the term instead.
      healthy: true,
      settled: () => last.then(() => undefined),
      // One connection keeps the writes in order.
      commit: (saved) => {
        const written = write(saved);
        last = written.catch(() => undefined);
        return written;
      },
    };
  }

  private async stepDown(reason: string): Promise<void> {
    if (!this.leading) return;
    this.term++;
    this.leading = false;
    this.holder = null;
    const supervisor = this.supervisor;
    this.supervisor = null;
    this.logger.warn({ reason }, 'no longer leading the ticker');
    supervisor?.removeAllListeners();
    await supervisor?.close();
  }

  private async op(op: cluster.ForwardedOp): Promise<OpReply> {
    if (this.closing) return { ok: false, error: CLOSED };
    // Without Redis nothing can be saved or forwarded: refused before anything is applied.
    if (!this.redisUp()) return { ok: false, error: REDIS_DOWN };
    return this.leading ? this.apply(op) : this.forward(op);
  }

  /** Leader only: the supervisor answers once the op's effect is saved. */
  private async apply(op: cluster.ForwardedOp): Promise<OpReply> {
    const { term, supervisor } = this;
    if (!supervisor) return { ok: false, error: NO_LEADER };
    const reply = await (op.type === 'buy' ? supervisor.buy(op.name) : supervisor[op.type]());
    return reply.ok || term === this.term ? reply : { ok: false, error: MOVED };
  }

  /** Every other node answers; the leader's answer is the one that is not null. */
  private async forward(op: cluster.ForwardedOp): Promise<OpReply> {
    let answers: unknown[];
    let late = false;
    try {
      const emitted = this.options.io().serverSideEmitWithAck(OP_EVENT, op);
      answers = await within(emitted, FORWARD_TIMEOUT_MS, 'forwarding an op');
    } catch (error) {
      // A node did not answer in time; the leader may have, and its answer counts.
      answers = (error as { responses?: unknown[] }).responses ?? [];
      late = true;
    }
    const replies = answers.flatMap((answer) => {
      const parsed = cluster.parseForwardedReply(answer);
      return parsed.ok && parsed.value ? [parsed.value] : [];
    });
    const reply = replies.find((candidate) => candidate.ok) ?? replies[0];
    return reply ?? { ok: false, error: late ? NO_ANSWER : NO_LEADER };
  }

  private readonly onForwarded = (raw: unknown, answer: (reply: OpReply | null) => void): void => {
    if (typeof answer !== 'function') return;
    const parsed = cluster.parseForwardedOp(raw);
    if (!parsed.ok) this.logger.error({ error: parsed.error }, 'ignored a bad forwarded op');
    if (!parsed.ok || !this.leading || this.closing) return answer(null);
    void this.apply(parsed.value).then(answer);
  };

  private async readState(): Promise<cluster.StoredState | null> {
    const text = await within(this.redis.commands.get(KEYS.state), REDIS_TIMEOUT_MS, 'reading');
    const parsed = text === null ? null : cluster.parseStoredState(text);
    if (parsed?.ok === false) this.logger.error({ error: parsed.error }, 'ignored a bad state');
    return parsed?.ok ? parsed.value : null;
  }
}

/** `promise`, or a rejection once `ms` have passed without an answer. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in time (${what})`)), Math.max(0, ms));
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function withoutStorage({ stocks, running, seq, ts }: UpdatePayload): UpdatePayload {
  return { stocks, running, seq, ts };
}
