/** A cluster node's ticker host. Updates and statuses are entries of the adapter's stream, stored
 * as `io.to(REPLAY_ROOM).emit()`, so recovery replays them. Live sockets are never in that room:
 * each node reads the stream and its broadcaster sends them, so sockets and snapshot never race. */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient, type RedisClientType } from 'redis';
import { z } from 'zod';

import type { OpeningPayload, StatusPayload, UpdatePayload } from '../../protocol/events';
import * as ipc from '../../protocol/ipc';
import * as v from '../../protocol/validation';
import { RECOVERY_WINDOW_MS, type ForkcastIo } from '../io';
import { within, type StateStore } from '../state-file';
import { historyTo, type HostHealth, type TickerHost, type TickerHostEvents } from '../ticker-host';
import { CLOSED_ERROR, TickerSupervisor, type SupervisorOptions } from '../ticker-supervisor';
import { LeaderLease } from './lease';

export async function joinCluster({
  redisUrl,
  logger,
  ...host
}: ClusterHostOptions & { redisUrl: string }) {
  const connect = async (name: string, offlineQueue: boolean): Promise<RedisClientType> => {
    const client = createClient({
      url: redisUrl,
      disableOfflineQueue: !offlineQueue,
      // At most 1 s between attempts, forever: Redis coming back is the normal end.
      socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1_000) },
    }) as RedisClientType;
    let down = false;
    client.on('error', (error: unknown) => {
      if (!down) logger.error({ err: error, connection: name }, 'cannot reach Redis; retrying');
      down = true;
    });
    client.on('ready', () => {
      if (down) logger.info({ connection: name }, 'reconnected to Redis');
      down = false;
    });
    return client.connect();
  };

  // Commands fail fast while Redis is away; the adapter's connection queues what a blip holds up.
  const commands = await connect('commands', false);
  const adapterClient = await connect('adapter', true);
  const reader = await connect('stream', true);
  // Recovery replays a window's worth of entries (one per update and status): twice that is kept.
  const maxLen = Math.max(10_000, Math.ceil((RECOVERY_WINDOW_MS / host.tickMs) * 2));
  // Channels of its own: another Socket.IO app on this Redis is neither asked nor counted.
  const adapter = createAdapter(adapterClient, { streamName: STREAM, maxLen, channelPrefix: UID });
  const options = { ...host, maxLen, logger: logger.child({ part: 'cluster' }) };
  const ticker = new ClusterTickerHost(options, { commands, adapter: adapterClient, reader });
  logger.info({ node: ticker.nodeId }, 'joined the cluster');
  return {
    app: { ticker, adapter },
    /** After the app (and so the host) has closed. */
    async close(): Promise<void> {
      // The blocking read would hold a graceful close up; a connection down has nothing to flush.
      reader.destroy();
      const close = async (client: RedisClientType): Promise<void> =>
        client.isReady ? client.close().catch(() => undefined) : client.destroy();
      await Promise.all([commands, adapterClient].map(close));
    },
  };
}

/** A takeover within 3 s of the leader dying; three renewals per TTL ride out a late one. */
const LEASE_TTL_MS = 1_500;
const RENEW_EVERY_MS = 500;
const CAMPAIGN_EVERY_MS = 200;
const OP_EVENT = 'forkcast:op';
const NEWEST_EVENT = 'forkcast:newest';
/** Nodes retry Redis 1 s apart at most: by then, normally, all that can reach it are asked. */
const PEERS_BACK_MS = 3_000;

const REDIS_DOWN = 'the cluster cannot reach Redis right now; try again in a moment';
const NO_LEADER = 'no ticker leader is elected right now; try again in a moment';
const MOVED = 'the ticker moved to another node meanwhile; the operation may not have been applied';
const NO_ANSWER = 'the leader did not answer in time; the operation may not have been applied';

type ClusterHostOptions = Pick<SupervisorOptions, 'tickMs' | 'logger' | 'onRestart'> & {
  /** Read at open(), after createApp. */
  io: () => ForkcastIo;
};

class ClusterTickerHost extends EventEmitter<TickerHostEvents> implements TickerHost {
  /** Fresh per process, so a restarted node is a new lease holder. */
  readonly nodeId = randomUUID();
  private readonly lease: LeaderLease;
  /** As read from the stream. */
  private state = ipc.seedTickerState(Date.now());
  private history: UpdatePayload[] = [];
  private opening: OpeningPayload | undefined;
  private leading = false;
  /** Bumped at every change of role: work begun in an earlier term drops its result. */
  private term = 0;
  private supervisor: TickerSupervisor | null = null;
  private holder: string | null = null;
  /** performance.now() until which the lease is surely ours (while leading). */
  private validUntil = 0;
  private opened: Promise<void> | null = null;
  private readonly closed = new AbortController();
  private upSince = performance.now();
  /** What this node last saved while leading: with buys its update may not have carried. */
  private committed: v.SavedState | null = null;

  constructor(
    private readonly options: ClusterHostOptions & { maxLen: number },
    private readonly redis: Record<'commands' | 'adapter' | 'reader', RedisClientType>,
  ) {
    super();
    this.lease = new LeaderLease(redis.commands, this.nodeId, LEASE_TTL_MS);
    redis.commands.on('ready', () => (this.upSince = performance.now()));
  }

  get pid(): number | undefined {
    return this.supervisor?.pid;
  }

  snapshot = (): UpdatePayload => structuredClone(this.state);

  greeting = () => ({ history: this.history, opening: this.opening ?? ipc.openingOf(this.state) });
  private seen = (): v.SavedState => {
    const streamed = { ...this.state, ...this.greeting(), unannounced: false };
    return newestOf([streamed, ...(this.committed ? [this.committed] : [])]);
  };

  health(): HostHealth {
    const redis = this.redisUp();
    const stale = this.pid === undefined || performance.now() >= this.validUntil;
    const status = !redis || this.holder === null || (this.leading && stale) ? 'degraded' : 'ok';
    const role = this.leading ? 'leader' : 'follower';
    const details = { node: this.nodeId, role, redis: redis ? 'up' : 'down', leader: this.holder };
    return { status, details };
  }

  open = (): Promise<void> => (this.opened ??= this.begin());

  start = () => this.op({ type: 'start' }) as Promise<ipc.RunReply>;
  stop = () => this.op({ type: 'stop' }) as Promise<ipc.RunReply>;
  buy: TickerHost['buy'] = (name) => this.op({ type: 'buy', name }) as Promise<ipc.BuyReply>;

  broadcastStatus = (status: StatusPayload): void =>
    void this.append('status', status).catch((err: unknown) =>
      this.options.logger.error({ err }, 'could not send a status'),
    );

  /** The leader's own sockets stand for the cluster: its child paces itself on them. */
  delivered = (seq: number): void => this.supervisor?.delivered(seq);

  async close(): Promise<void> {
    this.closed.abort();
    if (!this.leading) return;
    await this.stepDown('shutting down');
    // Hands over at once instead of making the cluster wait for the lease to run out.
    const warn = (err: unknown) => this.options.logger.warn({ err }, 'could not release the lease');
    await this.lease.release().catch(warn);
  }

  private redisUp = (): boolean => this.redis.commands.isReady && this.redis.adapter.isReady;

  /** Greets from the stored state once this node reads the stream, so no update falls between. */
  private async begin(): Promise<void> {
    const { io, logger } = this.options;
    io().on(OP_EVENT, this.onForwarded);
    io().on(NEWEST_EVENT, (answer: (state: v.SavedState) => void) => answer(this.seen()));
    io().on('connection', (socket) => {
      // Recovery put it back in the room: live, this node's broadcaster sends to it instead.
      if (socket.recovered) void socket.leave(REPLAY_ROOM);
      // So the session saved for its recovery asks for the room's entries.
      socket.on('disconnecting', () => void socket.join(REPLAY_ROOM));
    });
    const last = (await this.redis.reader.xRevRange(STREAM, '+', '-', { COUNT: 1 }))?.[0];
    void this.read(last?.id ?? '0-0');
    const stored = await this.readState();
    // A state is saved before its update is sent: what the stream brought meanwhile may be older
    // or newer. Merged by seq; the sort is stable, so the stream's copy of a seq comes last.
    const merged = [...(stored?.history ?? []), ...this.history].sort((a, b) => a.seq - b.seq);
    this.history = merged.reduce(historyTo, []);
    if (stored) this.opening ??= ipc.openingOf(stored);
    this.elect().catch((error: unknown) => logger.error({ err: error }, 'the election stopped'));
    if (stored?.unannounced && stored.seq >= this.state.seq) {
      // Its prices hold acked buys never sent under its seq: greet from the update carrying them.
      logger.info({ seq: stored.seq }, 'waiting for the update that carries the saved buys');
      while (this.state.seq <= stored.seq)
        await once(this, 'update', { signal: this.closed.signal });
    } else if (stored && stored.seq > this.state.seq) this.state = ipc.tickerState(stored);
    else if (stored?.seq === this.state.seq) this.state.running = stored.running;
  }

  /** Every node reads every entry (`reader` blocks: a connection of its own). */
  private async read(from: string): Promise<void> {
    const { reader } = this.redis;
    while (!this.closed.signal.aborted) {
      try {
        const reply = (await reader.xRead({ key: STREAM, id: from }, READ)) as Entries;
        for (const { id, message } of reply?.[0]?.messages ?? []) {
          from = id;
          if (message['uid'] !== UID) continue;
          const { packet } = JSON.parse(message['data'] ?? '') as { packet: { data: unknown } };
          this.onEntry(packet.data, id);
        }
      } catch (error) {
        if (this.closed.signal.aborted || !reader.isOpen) return;
        // Thrown by an entry, it is skipped (`from` is past it); by Redis, it is read again.
        this.options.logger.warn({ err: error, from }, 'reading the stream failed; retrying');
        await sleep(200);
      }
    }
  }

  private onEntry(data: unknown, offset: string): void {
    const parsed = v.parse(streamEntrySchema, 'entry', data);
    if (!parsed.ok) return this.options.logger.error({ error: parsed.error }, 'bad entry ignored');
    const [event, value] = parsed.value;
    if (event === 'status') {
      this.state.running = value.running;
      this.emit('status', value, offset);
    } else if (event === 'opening' && value.seq >= (this.opening?.seq ?? 0)) {
      // By seq: one a deposed leader sent late must not replace a later start's.
      this.opening = value;
      this.emit('opening', value, offset);
    } else if (event === 'update' && value.seq > this.state.seq) {
      // An update may come twice (a new leader resends one held up in Redis): a newer one counts.
      this.state = value;
      this.history = historyTo(this.history, value);
      this.emit('update', this.snapshot(), offset);
    }
  }

  private async append(...data: StreamEntry): Promise<void> {
    if (this.leading && performance.now() >= this.validUntil) throw new Error('past the lease');
    const packet = { type: 2, data, nsp: '/' };
    const opts = { rooms: [REPLAY_ROOM], except: [], flags: {} };
    const entry = { uid: UID, nsp: '/', type: '3', data: JSON.stringify({ packet, opts }) };
    const { maxLen: threshold } = this.options;
    const TRIM = { strategy: 'MAXLEN', strategyModifier: '~', threshold } as const;
    await this.redis.commands.xAdd(STREAM, '*', entry, { TRIM });
  }

  private async elect(): Promise<void> {
    while (!this.closed.signal.aborted) {
      const term = this.term;
      const sentAt = performance.now();
      try {
        if (this.leading) {
          const held = await this.lease.renew(this.validUntil - sentAt);
          if (held && term === this.term) this.validUntil = sentAt + LEASE_TTL_MS;
          if (!held && term === this.term) await this.stepDown('another node holds the lease');
        } else if (this.redisUp()) {
          const lease = await this.lease.tryAcquire();
          this.holder = lease.held ? this.nodeId : lease.holder;
          if (lease.held && this.closed.signal.aborted) await this.lease.release();
          // Not awaited: the lease is renewed while the child forks.
          else if (lease.held) void this.lead(lease.epoch, sentAt + LEASE_TTL_MS);
        } else this.holder = null;
      } catch (error) {
        this.options.logger.warn({ err: error, leading: this.leading }, 'election round failed');
        if (performance.now() >= this.validUntil) await this.stepDown('the lease ran out');
        // Not knowing who leads is /healthz's "degraded", not a stale name.
        if (!this.leading) this.holder = null;
      }
      const left = this.validUntil - performance.now();
      const pause = this.leading ? Math.max(0, Math.min(RENEW_EVERY_MS, left)) : CAMPAIGN_EVERY_MS;
      // Unreferenced: a closed node's loop ends at its next round without holding the process.
      await sleep(pause, undefined, { ref: false });
    }
  }

  private async lead(epoch: number, validUntil: number): Promise<void> {
    const term = ++this.term;
    this.leading = true;
    this.validUntil = validUntil;
    const { logger, tickMs, onRestart } = this.options;
    try {
      // Redis is authoritative; if it lost the state, the newest that a live node saw beats the seed.
      const stored = await this.readState();
      const newest = stored && stored.seq >= this.state.seq ? stored : await this.newestSeen();
      const resume = { ...newest, opening: ipc.openingOf(newest) };
      const store = this.store(term, epoch);
      await store.commit(resume);
      // The last leader may have died between saving an update and sending it. An unannounced
      // state is not: the child sends those prices under a new seq.
      if (term === this.term && resume.seq > this.state.seq && !resume.unannounced)
        await this.append('update', ipc.tickerState(resume));
      // Again: the last leader may have died before sending it, or the state predates openings.
      if (term === this.term) await this.append('opening', resume.opening);
      if (term !== this.term) return;
      const supervisor = new TickerSupervisor({
        ...{ tickMs, onRestart, store },
        initialState: resume,
        logger: logger.child({ part: 'ticker' }),
      });
      this.supervisor = supervisor;
      // Saved but not sent would leave a gap: the term ends, and the next leader sends it.
      const send = (...entry: StreamEntry) =>
        void this.append(...entry).catch(async (error: unknown) => {
          logger.error({ err: error, event: entry[0] }, 'could not send to the stream');
          if (term === this.term) await this.stepDown('the stream did not take an entry');
        });
      supervisor.on('update', (update) => send('update', update));
      supervisor.on('opening', (opening) => send('opening', opening));
      supervisor.on('lost', (reason) => this.emit('lost', reason));
      supervisor.on('back', () => this.emit('back'));
      logger.info({ epoch, seq: resume.seq, running: resume.running }, 'leading the ticker');
      await supervisor.open();
    } catch (error) {
      logger.error({ err: error }, 'could not take over as the ticker leader');
      if (term === this.term) await this.stepDown('the takeover failed');
    }
  }

  /** The newest state seen or saved by the nodes that can reach Redis and answer within 5 s. */
  private async newestSeen(): Promise<v.SavedState> {
    await sleep(this.upSince + PEERS_BACK_MS - performance.now(), undefined, { ref: false });
    const answers = await this.ask(NEWEST_EVENT).catch(
      (late: Error & { responses?: unknown[] }) => late.responses ?? Promise.reject(late),
    );
    const seen = answers.flatMap((answer) => v.savedStateSchema.safeParse(answer).data ?? []);
    return newestOf([this.seen(), ...seen]);
  }

  /** The state key, written in this term only, in order, fenced by the lease. A refused write
   * ends the term before the supervisor hears of it, so it reports no child lost. */
  private store(term: number, epoch: number): StateStore {
    let last = Promise.resolve();
    const write = async (saved: v.SavedState): Promise<void> => {
      const state = JSON.stringify({ ...saved, epoch });
      const log = (err: unknown) => this.options.logger.error({ err }, 'could not save the state');
      if (term === this.term && (await this.lease.writeState(epoch, state).catch(log)))
        return void (this.committed = saved);
      if (term === this.term) void this.stepDown('the state could not be saved');
      throw new Error('the state could not be saved under the lease');
    };
    return {
      healthy: true,
      settled: () => last.catch(() => undefined),
      commit: (saved) => (last = write(saved)),
    };
  }

  private async stepDown(reason: string): Promise<void> {
    if (!this.leading) return;
    this.term++;
    this.leading = false;
    this.holder = null;
    const supervisor = this.supervisor?.removeAllListeners();
    this.supervisor = null;
    this.options.logger.warn({ reason }, 'no longer leading the ticker');
    await supervisor?.close();
  }

  private async op(op: ipc.Op): Promise<ipc.OpReply> {
    if (this.closed.signal.aborted) return { ok: false, error: CLOSED_ERROR };
    // Without Redis nothing can be saved or forwarded: refused before anything is applied.
    if (!this.redisUp()) return { ok: false, error: REDIS_DOWN };
    return this.leading ? this.apply(op) : this.forward(op);
  }

  private async apply(op: ipc.Op): Promise<ipc.OpReply> {
    const { term, supervisor: s } = this;
    if (!s) return { ok: false, error: NO_LEADER };
    const reply = await (op.type === 'buy' ? s.buy(op.name) : s[op.type]());
    return reply.ok || term === this.term ? reply : { ok: false, error: MOVED };
  }

  private async forward(op: ipc.Op): Promise<ipc.OpReply> {
    // Not all answered in time: the leader may have, and its answer counts.
    const { answers, error } = await this.ask(OP_EVENT, op).then(
      (answers) => ({ answers, error: NO_LEADER }),
      (late: { responses?: unknown[] }) => ({ answers: late.responses ?? [], error: NO_ANSWER }),
    );
    const parsed = answers.map((a) => v.parse(ipc.opReplySchema.nullable(), 'op reply', a));
    const replies = parsed.flatMap((p) => (p.ok && p.value ? [p.value] : []));
    return replies.find((reply) => reply.ok) ?? replies[0] ?? { ok: false, error };
  }

  /** Others' answers (late: on `responses`), by our own deadline: a Redis drop can hang theirs. */
  private ask = (event: string, ...args: unknown[]): Promise<unknown[]> =>
    within(this.options.io().serverSideEmitWithAck(event, ...args), 8_000, `no answer to ${event}`);

  private readonly onForwarded = (raw: unknown, answer: (reply: ipc.OpReply | null) => void) => {
    const parsed = v.parse(ipc.opSchema, 'forwarded op', raw);
    if (!parsed.ok)
      this.options.logger.error({ error: parsed.error }, 'ignored a bad forwarded op');
    if (!parsed.ok || !this.leading) return answer(null);
    void this.apply(parsed.value).then(answer);
  };

  private async readState(): Promise<z.infer<typeof storedStateSchema> | null> {
    const text = await this.lease.readState();
    const parsed = text === null ? null : v.parseJson(storedStateSchema, 'stored state', text);
    if (parsed?.ok === false) this.options.logger.error({ error: parsed.error }, 'ignored a state');
    return parsed?.ok ? parsed.value : null;
  }
}

const STREAM = 'forkcast:stream';
const READ = { BLOCK: 1_000, COUNT: 100 };
type Entries = { messages: { id: string; message: Record<string, string> }[] }[] | null;
const REPLAY_ROOM = 'forkcast:replay';
/** Marks our entries (no adapter has this uid, so none skips them) and names our channel. */
const UID = 'forkcast';

// What other nodes write to Redis is checked: a node may run another version, or not be ours.
/** The state as the leader keeps it in Redis, with the term (`epoch`) that wrote it. */
export const storedStateSchema = v.savedStateSchema.extend({ epoch: z.number().int().positive() });
/** The highest seq; at one seq, one with buys no update carried yet; else the first. */
export const newestOf = ([first, ...rest]: [v.SavedState, ...v.SavedState[]]) =>
  rest.reduce((newest, state) => {
    const tie = state.seq === newest.seq && state.unannounced && !newest.unannounced;
    return state.seq > newest.seq || tie ? state : newest;
  }, first);
/** An entry of the cluster's stream: an event for every socket, as the adapter stores it. */
const streamEntrySchema = z.union([
  z.tuple([z.literal('update'), v.updateSchema]),
  z.tuple([z.literal('status'), v.statusSchema]),
  z.tuple([z.literal('opening'), v.openingSchema]),
]);
type StreamEntry = z.infer<typeof streamEntrySchema>;
