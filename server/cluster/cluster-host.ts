/** A cluster node's ticker host; the lease holder also runs the child. Others publish ops to it
 * (a publish with no subscriber means no leader). The leader saves state to Redis, fenced, before
 * it acks or broadcasts, so what clients see is always what the next leader resumes from. */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

import {
  parseRemoteOp,
  parseRemoteReply,
  parseStoredState,
  type RemoteOp,
  type RemoteReply,
  type StoredState,
} from '../../protocol/cluster';
import type { UpdatePayload } from '../../protocol/events';
import type { BuyReply, OpReply, ParentOpWithoutId, RunReply } from '../../protocol/ipc';
import type { StockName } from '../../protocol/stocks';
import { parseStatusPayload, parseUpdatePayload } from '../../protocol/validation';
import type { Logger } from '../logger';
import { PendingRequests } from '../pending';
import type { HostHealth, TickerHost, TickerHostEvents } from '../ticker-host';
import { TickerSupervisor } from '../ticker-supervisor';
import { clusterKeys, LeaderLease, type ClusterKeys, type RedisClient } from './lease';

/** Chosen for a takeover within 3 s of the leader dying. Three renewals per TTL let renewals fail
 * or come late for about 0.7 s (a long broadcast, a GC pause) before the leader steps down. */
const LEASE_TTL_MS = 1_500;
const RENEW_EVERY_MS = 500;
const CAMPAIGN_EVERY_MS = 200;
/** A leader with less than this left (by its own clock, from sending the renewal) renews at once,
 * so after a stall it learns whether it still holds the lease before it runs out. */
const RENEW_NOW_MARGIN_MS = 300;
/** Lease check apart from the campaign, which may be stuck on Redis. The leader steps down at the
 * lease's end by its own clock; Redis expires it no sooner, so leaders never overlap. */
const WATCHDOG_EVERY_MS = 50;
/** A Redis command slower than this fails: catches a Redis that stalls with the connection up. */
const REDIS_TIMEOUT_MS = 1_000;
/** Forwarded ops remembered per asker, so a repeated delivery is applied once. */
const SEEN_OPS = 1_000;
export interface ClusterHostOptions {
  /** Commands and publishes. Created with `disableOfflineQueue`: while Redis is away a command
   * fails at once instead of waiting, so callers get a clear error. */
  redis: RedisClient;
  /** A second connection for the ops / replies subscriptions. */
  subscriber: RedisClient;
  /** Puts an update into the cluster's stream, for every node's sockets (fanout.ts). */
  publish: (update: UpdatePayload) => Promise<void>;
  /** Resolves once this node receives the cluster's broadcasts, with the newest update before
   * that (null if none): what open() greets clients with. */
  catchUp: () => Promise<unknown>;
  childPath: string;
  tickMs: number;
  logger: Logger;
  /** Where a cluster whose Redis holds no state yet starts from. */
  seed: UpdatePayload;
  keys?: ClusterKeys;
  nodeId?: string;
  leaseTtlMs?: number;
  renewEveryMs?: number;
  campaignEveryMs?: number;
  /** How long a forwarded op waits for the leader's reply. */
  opTimeoutMs?: number;
  onRestart?: () => void;
}

type Role = 'follower' | 'leader';

const REDIS_DOWN = 'the cluster cannot reach Redis right now; try again in a moment';
const NO_LEADER = 'no ticker leader is elected right now; try again in a moment';
const MOVED = 'the ticker moved to another node meanwhile; the operation may not have been applied';
const NO_ANSWER =
  'the ticker leader did not answer in time; the operation may not have been applied';
const CLOSED = 'the server is shutting down';

export class ClusterTickerHost extends EventEmitter<TickerHostEvents> implements TickerHost {
  readonly nodeId: string;

  private readonly keys: ClusterKeys;
  private readonly lease: LeaderLease;
  private readonly redis: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly logger: Logger;
  private readonly options: ClusterHostOptions;
  private readonly renewEveryMs: number;
  private readonly opTimeoutMs: number;

  /** The latest state this node's sockets have been sent. */
  private state: UpdatePayload;
  private role: Role = 'follower';
  /** Bumped at every change of role: work begun in an earlier term drops its result. */
  private term = 0;
  private epoch = 0;
  private supervisor: TickerSupervisor | null = null;
  private leaderToken: string | null = null;
  /** performance.now() until which the lease is surely ours (while leader). */
  private leaseValidUntil = 0;
  private lastRenewAt = 0;
  private renewing: Promise<void> | null = null;
  private campaignTimer: NodeJS.Timeout | null = null;
  private watchdogTimer: NodeJS.Timeout | null = null;
  /** The leader's own connection for the ops channel (see takeOps). */
  private opsConnection: RedisClient | null = null;
  private readonly seenOps = new Set<string>();
  private campaigning = false;
  private closing = false;
  private opened: Promise<void> | null = null;

  /** True between a buy's reply and the update that carries it (see ParentMessage init). */
  private unannounced = false;
  private writing: Promise<boolean> = Promise.resolve(true);
  private queuedWrite: Promise<boolean> | null = null;

  private readonly forwarded = new PendingRequests<OpReply>();

  constructor(options: ClusterHostOptions) {
    super();
    this.options = options;
    this.nodeId = options.nodeId ?? randomUUID();
    this.keys = options.keys ?? clusterKeys();
    this.redis = options.redis;
    this.subscriber = options.subscriber;
    this.logger = options.logger;
    this.renewEveryMs = options.renewEveryMs ?? RENEW_EVERY_MS;
    this.opTimeoutMs = options.opTimeoutMs ?? 5_000;
    this.lease = new LeaderLease(
      this.redis,
      this.keys,
      this.nodeId,
      options.leaseTtlMs ?? LEASE_TTL_MS,
    );
    this.state = structuredClone(options.seed);
  }

  get pid(): number | undefined {
    return this.role === 'leader' ? this.supervisor?.pid : undefined;
  }

  get isLeader(): boolean {
    return this.role === 'leader';
  }

  snapshot(): UpdatePayload {
    return structuredClone(this.state);
  }

  health(): HostHealth {
    const redis = this.redis.isReady && this.subscriber.isReady;
    const leader = this.role === 'leader' ? this.nodeId : this.leaderToken;
    let status: HostHealth['status'] = 'ok';
    if (!redis || leader === null) status = 'degraded';
    if (
      this.role === 'leader' &&
      (this.supervisor?.pid === undefined || performance.now() >= this.leaseValidUntil)
    )
      status = 'degraded';
    return {
      status,
      details: {
        node: this.nodeId,
        role: this.role,
        redis: redis ? 'up' : 'down',
        leader,
      },
    };
  }

  open(): Promise<void> {
    if (this.closing) return Promise.reject(new Error('cluster ticker host is closed'));
    this.opened ??= this.begin();
    return this.opened;
  }

  start(): Promise<RunReply> {
    return this.op({ type: 'start' }) as Promise<RunReply>;
  }

  stop(): Promise<RunReply> {
    return this.op({ type: 'stop' }) as Promise<RunReply>;
  }

  buy(name: StockName): Promise<BuyReply> {
    return this.op({ type: 'buy', name }) as Promise<BuyReply>;
  }

  delivered(seq: number): void {
    // The leader's own sockets stand for the cluster: its child paces itself on them.
    if (this.role === 'leader') this.supervisor?.delivered(seq);
  }

  /** An update from the stream: kept as the snapshot for late joiners and passed on. One already
   * sent is dropped: held up in Redis during an outage, a new leader may have resent it. */
  observeUpdate(raw: unknown, offset: string): void {
    const parsed = parseUpdatePayload(raw);
    if (!parsed.ok) {
      this.logger.error({ error: parsed.error }, 'ignored a malformed update from the cluster');
      return;
    }
    if (parsed.value.seq <= this.state.seq) {
      this.logger.warn({ seq: parsed.value.seq, had: this.state.seq }, 'dropped a stale update');
      return;
    }
    this.state = parsed.value;
    this.emit('update', this.snapshot(), offset);
  }

  /** A status this node's sockets got: start and stop reach other nodes this way. */
  observeStatus(raw: unknown): void {
    const parsed = parseStatusPayload(raw);
    if (parsed.ok) this.state.running = parsed.value.running;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.campaignTimer) clearInterval(this.campaignTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.campaignTimer = null;
    this.watchdogTimer = null;
    this.forwarded.answerAll({ ok: false, error: CLOSED });
    if (this.role === 'leader') {
      await this.stepDown('shutting down');
      // Hand over at once instead of making the cluster wait for the lease to run out.
      await within(this.lease.release(), 'releasing the lease').catch((error: unknown) => {
        this.logger.warn({ err: error }, 'could not release the leader lease');
      });
    }
    await this.subscriber.unsubscribe(this.keys.replies(this.nodeId)).catch(() => undefined);
  }

  private async begin(): Promise<void> {
    await this.subscriber.subscribe(this.keys.replies(this.nodeId), (message) =>
      this.onReply(message),
    );
    const newest = parseUpdatePayload(await this.options.catchUp());
    const stored = await this.readStoredState();
    if (this.closing) return;
    if (newest.ok && newest.value.seq > this.state.seq) this.state = newest.value;
    if (stored) {
      // A cluster idle for longer than the stream's memory: the stored state is all there is.
      if (!newest.ok && stored.seq > this.state.seq) this.state = withoutStorage(stored);
      // Start and stop change the stored state without an update.
      if (stored.seq === this.state.seq) this.state.running = stored.running;
    }
    this.campaignTimer = setInterval(
      () => void this.campaign(),
      this.options.campaignEveryMs ?? CAMPAIGN_EVERY_MS,
    );
    // Apart from the campaign, which may be stuck waiting on Redis.
    this.watchdogTimer = setInterval(() => this.watchLease(), WATCHDOG_EVERY_MS);
    await this.campaign();
  }

  /** One round: a follower tries for the lease, a leader renews it or steps down. */
  private async campaign(): Promise<void> {
    if (this.campaigning || this.closing) return;
    this.campaigning = true;
    try {
      if (this.role === 'leader') await this.keepLease();
      else await this.seekLease();
    } catch (error) {
      this.logger.warn({ err: error, role: this.role }, 'leader election round failed');
    } finally {
      this.campaigning = false;
    }
  }

  /** A leader renews a lease about to run out at once, and steps down once it has. */
  private watchLease(): void {
    if (this.role !== 'leader') return;
    const left = this.leaseValidUntil - performance.now();
    if (left <= 0) void this.stepDown('the lease ran out before it could be renewed');
    else if (left < RENEW_NOW_MARGIN_MS) void this.renew();
  }

  private async seekLease(): Promise<void> {
    if (!this.redis.isReady) return;
    const sentAt = performance.now();
    const acquired = await within(this.lease.tryAcquire(), 'trying for the lease');
    if (this.closing) {
      if (acquired.held) await within(this.lease.release(), 'releasing the lease');
      return;
    }
    if (!acquired.held) {
      this.leaderToken = acquired.holder;
      return;
    }
    this.leaseValidUntil = sentAt + this.lease.ttlMs;
    this.lastRenewAt = sentAt;
    // Not awaited: forking the child takes a while, and the lease must be renewed meanwhile.
    this.becomeLeader(acquired.epoch).catch(async (error: unknown) => {
      this.logger.error({ err: error }, 'could not take over as the ticker leader');
      await this.stepDown('the takeover failed');
    });
  }

  private async keepLease(): Promise<void> {
    if (performance.now() - this.lastRenewAt < this.renewEveryMs) return;
    await this.renew();
  }

  /** One renewal at a time; a refusal (another node holds the lease) ends the term. */
  private renew(): Promise<void> {
    if (this.renewing || !this.redis.isReady) return this.renewing ?? Promise.resolve();
    const term = this.term;
    const sentAt = performance.now();
    this.lastRenewAt = sentAt;
    this.renewing = (async () => {
      try {
        const held = await within(this.lease.renew(), 'renewing the lease');
        if (term !== this.term) return;
        if (held) this.leaseValidUntil = Math.max(this.leaseValidUntil, sentAt + this.lease.ttlMs);
        else await this.stepDown('another node holds the lease');
      } catch (error) {
        // Redis away or slow: the watchdog steps down if no renewal succeeds in time.
        this.logger.warn({ err: error }, 'could not renew the lease');
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  private async becomeLeader(epoch: number): Promise<void> {
    const term = ++this.term;
    this.role = 'leader';
    this.epoch = epoch;
    this.leaderToken = this.nodeId;
    const stored = await this.readStoredState();
    if (term !== this.term || this.closing) return;
    // Redis is authoritative; if it lost the state, the newest update seen here beats the seed.
    const resume =
      stored && stored.seq >= this.state.seq
        ? stored
        : { ...this.state, unannounced: false, epoch };
    // Claim the state for this term before anything else is done with it.
    const claimed = { ...resume, epoch };
    const claim = this.lease.writeState(epoch, JSON.stringify(claimed));
    if (!(await within(claim, 'claiming the state')) || term !== this.term || this.closing) {
      await this.stepDown('the lease was lost while taking over');
      return;
    }
    // The last leader may have died between saving an update and sending it: send it now,
    // before the new child's first, so seq runs on without a gap.
    if (resume.seq > this.state.seq) {
      try {
        await this.options.publish(withoutStorage(resume));
      } catch (error) {
        this.logger.error({ err: error }, 'could not send the update the last leader left');
        await this.stepDown('the stream did not take an update');
        return;
      }
    }
    if (term !== this.term || this.closing) return;
    this.unannounced = resume.unannounced;
    const supervisor = new TickerSupervisor({
      childPath: this.options.childPath,
      tickMs: this.options.tickMs,
      initialState: withoutStorage(resume),
      unannounced: resume.unannounced,
      logger: this.logger.child({ part: 'ticker' }),
      onRestart: () => this.options.onRestart?.(),
    });
    this.supervisor = supervisor;
    supervisor.on('update', (update) => void this.onLeaderUpdate(term, update));
    supervisor.on('lost', (reason) => this.emit('lost', reason));
    supervisor.on('back', () => this.emit('back'));
    this.logger.info(
      { epoch, seq: resume.seq, running: resume.running },
      'became the ticker leader',
    );
    try {
      await supervisor.open();
    } catch (error) {
      if (term === this.term) await this.stepDown('the ticker child did not start');
      this.logger.error({ err: error }, 'could not start the ticker as leader');
      return;
    }
    if (term !== this.term || this.closing) return;
    await this.takeOps(term);
  }

  /** Subscribes on a connection of its own, destroyed at step-down, so the subscription ends with
   * the term even if Redis is away (a failed unsubscribe would resubscribe when it returns). */
  private async takeOps(term: number): Promise<void> {
    const connection = this.redis.duplicate();
    connection.on('error', () => undefined);
    this.opsConnection = connection;
    try {
      await within(connection.connect(), 'connecting for ops');
      await within(
        connection.subscribe(this.keys.ops, (message) => {
          if (this.opsConnection === connection && this.term === term)
            void this.onRemoteOp(message);
        }),
        'subscribing to ops',
      );
    } catch (error) {
      this.logger.error({ err: error }, 'could not take ops from other nodes');
      if (term === this.term) await this.stepDown('could not subscribe to ops');
    }
  }

  private async stepDown(reason: string): Promise<void> {
    if (this.role !== 'leader') return;
    this.term++;
    this.role = 'follower';
    this.leaderToken = null;
    const supervisor = this.supervisor;
    this.supervisor = null;
    this.queuedWrite = null;
    this.logger.warn({ reason, epoch: this.epoch }, 'no longer the ticker leader');
    const ops = this.opsConnection;
    this.opsConnection = null;
    ops?.destroy();
    if (supervisor) {
      supervisor.removeAllListeners();
      await supervisor.close();
    }
  }

  private async onLeaderUpdate(term: number, update: UpdatePayload): Promise<void> {
    this.unannounced = false;
    const saved = await this.persist();
    // If the term ended since, the next leader resumes from what was saved and sends it.
    if (!saved || term !== this.term) return;
    try {
      await this.options.publish(update);
    } catch (error) {
      // Saved but not sent: the next leader sends it, so the term ends here.
      this.logger.error({ err: error, seq: update.seq }, 'could not send an update');
      if (term === this.term) await this.stepDown('the stream did not take an update');
    }
  }

  /** Writes the leader's state to Redis, fenced by the lease. Calls while a write waits share it
   * (it writes the newest state); a refused write ends the term. */
  private persist(): Promise<boolean> {
    if (this.queuedWrite) return this.queuedWrite;
    const term = this.term;
    const write = async (): Promise<boolean> => {
      this.queuedWrite = null;
      const supervisor = this.supervisor;
      if (term !== this.term || !supervisor) return false;
      const state: StoredState = {
        ...supervisor.current(),
        unannounced: this.unannounced,
        epoch: this.epoch,
      };
      let saved = false;
      try {
        saved = await within(
          this.lease.writeState(this.epoch, JSON.stringify(state)),
          'saving the state',
        );
      } catch (error) {
        this.logger.error({ err: error }, 'could not save the ticker state to Redis');
      }
      if (!saved && term === this.term) await this.stepDown('the state could not be saved');
      return saved && term === this.term;
    };
    const queued = this.writing.then(write);
    this.writing = queued;
    this.queuedWrite = queued;
    return queued;
  }

  private async op(op: ParentOpWithoutId): Promise<OpReply> {
    if (this.closing) return { ok: false, error: CLOSED };
    // Without Redis nothing can be saved or forwarded: refused before anything is applied.
    if (!this.redis.isReady) return { ok: false, error: REDIS_DOWN };
    if (this.role === 'leader') return this.apply(op);
    return this.forward(op);
  }

  /** Leader only: applies the op to the child and saves its effect before answering. */
  private async apply(op: ParentOpWithoutId): Promise<OpReply> {
    const term = this.term;
    const supervisor = this.supervisor;
    if (!supervisor) return { ok: false, error: NO_LEADER };
    let reply: OpReply;
    if (op.type === 'buy') reply = await supervisor.buy(op.name);
    else reply = op.type === 'start' ? await supervisor.start() : await supervisor.stop();
    if (term !== this.term) return { ok: false, error: MOVED };
    if (!reply.ok) return reply;
    if ('stock' in reply) this.unannounced = true;
    if (!(await this.persist())) return { ok: false, error: MOVED };
    return reply;
  }

  private async forward(op: ParentOpWithoutId): Promise<OpReply> {
    const { id, answer: reply } = this.forwarded.add(this.opTimeoutMs, (late) =>
      this.forwarded.answer(late, { ok: false, error: NO_ANSWER }),
    );
    const message: RemoteOp = { id, from: this.nodeId, op };
    // Not awaited: the reply's own deadline must hold even if Redis stalls.
    within(this.redis.publish(this.keys.ops, JSON.stringify(message)), 'forwarding an op').then(
      (listeners) => {
        if (listeners === 0) this.forwarded.answer(id, { ok: false, error: NO_LEADER });
      },
      () => this.forwarded.answer(id, { ok: false, error: REDIS_DOWN }),
    );
    return reply;
  }

  private onReply(message: string): void {
    const parsed = parseRemoteReply(message);
    if (!parsed.ok) {
      this.logger.error({ error: parsed.error }, 'ignored a malformed reply from the leader');
      return;
    }
    this.forwarded.answer(parsed.value.id, parsed.value.reply);
  }

  private async onRemoteOp(message: string): Promise<void> {
    const parsed = parseRemoteOp(message);
    if (!parsed.ok) {
      this.logger.error({ error: parsed.error }, 'ignored a malformed op from another node');
      return;
    }
    const { id, from, op } = parsed.value;
    const key = `${from}:${id}`;
    if (this.seenOps.has(key)) return;
    this.seenOps.add(key);
    // A Set iterates in insertion order: the first one is the oldest.
    if (this.seenOps.size > SEEN_OPS)
      this.seenOps.delete(this.seenOps.values().next().value ?? key);
    const term = this.term;
    if (this.role !== 'leader') return;
    const reply = await this.apply(op);
    // An ended term stays silent: the op may have reached the next leader, whose answer counts.
    if (term !== this.term) return;
    const answer: RemoteReply = { id, reply };
    await within(
      this.redis.publish(this.keys.replies(from), JSON.stringify(answer)),
      'answering',
    ).catch((error: unknown) => {
      this.logger.error({ err: error, to: from }, 'could not answer a forwarded op');
    });
  }

  private async readStoredState(): Promise<StoredState | null> {
    const text = await within(this.redis.get(this.keys.state), 'reading the state');
    if (text === null) return null;
    const parsed = parseStoredState(text);
    if (parsed.ok) return parsed.value;
    this.logger.error({ error: parsed.error }, 'the state in Redis is not valid; ignoring it');
    return null;
  }
}

/** `promise`, or a rejection once REDIS_TIMEOUT_MS have passed without an answer. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Redis did not answer in time (${what})`)),
      REDIS_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

function withoutStorage({ stocks, running, seq, ts }: StoredState): UpdatePayload {
  return { stocks, running, seq, ts };
}
