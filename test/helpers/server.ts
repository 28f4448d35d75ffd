/** createApp in-process (real forked ticker child), and real clients that record every event. */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { buffer } from 'node:stream/consumers';

import { EventSource, type FetchLike } from 'eventsource';
import { pino } from 'pino';
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';

import type {
  BuyAck,
  ClientToServerEvents,
  HistoryPayload,
  OpeningPayload,
  RunAck,
  ServerToClientEvents,
  Stock,
  StatusPayload,
  UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';
import { createApp, type AppConfig } from '../../server/app';
import { createStateFile } from '../../server/state-file';
import type { TickerHost } from '../../server/ticker-host';
import { grown } from './prices';
import { Recorder, withDeadline, type WaitOptions } from './recorder';

type ForkcastClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
type ClientOptions = Partial<ManagerOptions & SocketOptions>;
type ClientEvent =
  | { kind: 'status'; status: StatusPayload; at: number }
  | { kind: 'update'; update: UpdatePayload; at: number };
type StatusEvent = Extract<ClientEvent, { kind: 'status' }>;
type UpdateEvent = Extract<ClientEvent, { kind: 'update' }>;
export const isStatus = (event: ClientEvent): event is StatusEvent => event.kind === 'status';
export const isUpdate = (event: ClientEvent): event is UpdateEvent => event.kind === 'update';

/** A wait on a client's events from index `from` on, with the default deadline unless given. */
type Since = Partial<WaitOptions> & { from: number };
export type TestServer = Awaited<ReturnType<typeof startServer>>;
type ServerOptions = Pick<AppConfig, 'tickMs'> & Partial<AppConfig> & { stateFile?: string };

/** createApp with a silent logger, and its state in `stateFile` if given. */
export async function startServer({ stateFile, ...options }: ServerOptions) {
  const logger = pino({ level: 'silent' });
  const store = stateFile
    ? createStateFile({ path: stateFile, logger, exclusive: false })
    : undefined;
  const forkcast = createApp({ logger, store, initialState: await store?.open(), ...options });
  const { port } = await forkcast.listen(0, '127.0.0.1');
  return { forkcast, url: `http://127.0.0.1:${port}` };
}

/** One greeted client per name, connected in turn, each added to `tracked` for cleanup. Its own
 * list, not `tracked`'s tail: calls may run at once (Promise.all) and interleave. */
export async function connectWelcomed(url: string, tracked: TestClient[], ...names: string[]) {
  const joined: TestClient[] = [];
  for (const name of names) {
    const client = await TestClient.connect(url, name);
    tracked.push(client);
    joined.push(client);
    await client.welcome();
  }
  return joined;
}

export class TestClient {
  readonly events = new Recorder<ClientEvent>();
  /** The greeting's `history`, and `opening` events: apart, as tests count `events`. */
  readonly others = new Recorder<
    { event: 'history'; payload: HistoryPayload } | { event: 'opening'; payload: OpeningPayload }
  >();

  private constructor(
    readonly name: string,
    readonly socket: ForkcastClientSocket,
    /** For malformed emits the typed socket would not compile. */
    readonly raw: Socket = socket,
  ) {}

  /** Resolves once connected, maybe before the welcome. */
  static async connect(url: string, name: string, options: ClientOptions = {}) {
    const settings = { transports: ['websocket'], ...options, forceNew: true, reconnection: false };
    const socket: ForkcastClientSocket = io(url, settings);
    const client = new TestClient(name, socket);
    // On in the same turn as io(): nothing, the welcome included, can arrive before them.
    const at = () => performance.now();
    socket.on('status', (status) => client.events.push({ kind: 'status', status, at: at() }));
    socket.on('update', (update) => client.events.push({ kind: 'update', update, at: at() }));
    socket.on('history', (payload) => client.others.push({ event: 'history', payload }));
    socket.on('opening', (payload) => client.others.push({ event: 'opening', payload }));
    const connected = new Promise<void>((resolve, reject) =>
      socket.once('connect', resolve).once('connect_error', reject),
    );
    await withDeadline(connected, 3_000, `${name} to connect`);
    return client;
  }

  get statuses(): StatusPayload[] {
    return this.events.items.filter(isStatus).map((event) => event.status);
  }

  get updates(): UpdatePayload[] {
    return this.events.items.filter(isUpdate).map((event) => event.update);
  }

  /** The first two events after connecting: the EHLO status, then the snapshot. */
  async welcome(): Promise<{ status: StatusPayload; snapshot: UpdatePayload }> {
    const [first, second] = await this.events.waitForCount(2, () => true, this.wait('welcome'));
    if (first?.kind !== 'status' || second?.kind !== 'update')
      throw new Error(`${this.name}'s welcome out of order: ${JSON.stringify([first, second])}`);
    return { status: first.status, snapshot: second.update };
  }

  /** The payload of the next `opening` (or `history`) at or after `from`. */
  async next<E extends 'history' | 'opening'>(event: E, from = 0) {
    const found = await this.others.waitFor((o) => o.event === event, this.wait(event, { from }));
    return found.payload as E extends 'history' ? HistoryPayload : OpeningPayload;
  }

  waitForStatus(message: string, options: Since): Promise<StatusEvent> {
    const is = (event: ClientEvent): event is StatusEvent =>
      isStatus(event) && event.status.message === message;
    return this.events.waitFor(is, this.wait(`status "${message}"`, options));
  }

  async waitForUpdates(count: number, options: Since): Promise<UpdatePayload[]> {
    const wait = this.wait(`${count} update(s)`, options);
    return (await this.events.waitForCount(count, isUpdate, wait)).map((event) => event.update);
  }

  async nextUpdate(options: Since): Promise<UpdatePayload> {
    return (await this.waitForUpdates(1, options))[0]!;
  }

  /** The last update received before index `before` (default: so far). */
  lastUpdate(before = this.events.mark): UpdatePayload {
    const update = this.events.items.slice(0, before).filter(isUpdate).at(-1)?.update;
    if (!update) throw new Error(`${this.name} has no update yet`);
    return update;
  }

  start() {
    return this.acked<RunAck>('start', (callback) => this.socket.emit('start', callback));
  }

  stop() {
    return this.acked<RunAck>('stop', (callback) => this.socket.emit('stop', callback));
  }

  async buy(name: StockName, timeoutMs?: number) {
    const emit = (callback: (ack: BuyAck) => void) => this.socket.emit('buy', name, callback);
    return { name, ...(await this.acked(`buy ${name}`, emit, timeoutMs)) };
  }

  emitRaw(event: string, ...args: unknown[]) {
    return this.acked<unknown>(event, (callback) => this.raw.emit(event, ...args, callback));
  }

  /** A round trip that changes nothing (an unknown event: hostile-input.test.ts): by per-connection
   * order, all the server sent this client before has arrived. A barrier instead of a sleep. */
  async sync(): Promise<void> {
    await this.emitRaw('forkcast-test-barrier');
  }

  /** The default deadline, and `what` named after this client. */
  private wait(what: string, options?: Since): WaitOptions {
    return { timeoutMs: 3_000, what: `${this.name}: ${what}`, ...options };
  }

  /** The ack, and the event count and the time when it arrived, `ms` after the emit. A callback,
   * not emitWithAck(): a continuation after `await` may run after later frames. */
  private acked<R>(what: string, emit: (callback: (result: R) => void) => void, timeoutMs = 3_000) {
    const sent = performance.now();
    const acked = new Promise<{ ack: R; index: number; at: number; ms: number }>((resolve) =>
      emit((ack) => {
        const at = performance.now();
        resolve({ ack, index: this.events.mark, at, ms: at - sent });
      }),
    );
    return withDeadline(acked, timeoutMs, `${this.name}: the ack of ${what}`);
  }

  /** Drops the connection below Socket.IO, as a network blip does (a Socket.IO disconnect ends the
   * session), lets `meanwhile` pass and connects again; returns the event index at the reconnect. */
  async blip(meanwhile?: () => Promise<unknown>): Promise<number> {
    const gone = new Promise<string>((resolve) => this.socket.once('disconnect', resolve));
    this.socket.io.engine.close();
    expect(await withDeadline(gone, 3_000, `${this.name} to drop`)).toBe('forced close');
    await meanwhile?.();
    const mark = this.events.mark;
    const back = new Promise<void>((resolve) => this.socket.once('connect', () => resolve()));
    this.socket.connect();
    await withDeadline(back, 5_000, `${this.name} to reconnect`);
    return mark;
  }

  close(): void {
    this.socket.disconnect();
  }
}

export interface StreamEvent {
  type: string;
  data: unknown;
  id: string;
}

/** An EventSource, added to `tracked`, and its events; `fetchVia` may aim a reconnect elsewhere. */
export function listenToStream(url: string, tracked: EventSource[], fetchVia: FetchLike = fetch) {
  const events = new Recorder<StreamEvent>();
  const source = new EventSource(url, { fetch: fetchVia });
  tracked.push(source);
  for (const type of ['update', 'status', 'opening', 'resync'])
    source.addEventListener(type, (event) =>
      events.push({ type, data: JSON.parse(String(event.data)) as unknown, id: event.lastEventId }),
    );
  return events;
}

/** The stream so far: every update, its seq one past the one before and its event id; no resync. */
export function expectEveryStreamUpdate(events: Recorder<StreamEvent>): void {
  const updates = events.items.filter(({ type }) => type === 'update');
  const seqs = updates.map(({ data }) => (data as UpdatePayload).seq);
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  expect(updates.map(({ id }) => id)).toEqual(seqs.map(String));
  expect(events.items.filter(({ type }) => type === 'resync')).toEqual([]);
}

/** Every update (of those given, or a client saw) has seq exactly one more than the one before. */
export function expectContiguousSeq(seen: TestClient | readonly UpdatePayload[]): void {
  const [name, updates] = seen instanceof TestClient ? [seen.name, seen.updates] : ['', seen];
  const seqs = updates.map((update) => update.seq);
  expect([name, seqs]).toEqual([name, seqs.map((_, i) => seqs[0]! + i)]);
}

/** Every acked buy applied exactly once: a stock's acked prices are its price in `before` grown
 * 1, 2, ..., n times, and `client` comes to hold exactly that. */
export async function expectBuysApplied(
  client: TestClient,
  since: Since,
  before: readonly Stock[],
  buys: readonly { name: StockName; ack: BuyAck }[],
): Promise<void> {
  const stocks = before.map(({ name, price }) => {
    const prices = buys.flatMap((b) => (b.ack.ok && b.name === name ? [b.ack.stock.price] : []));
    expect(prices.sort((x, y) => x - y)).toEqual(prices.map((_, i) => grown(price, i + 1)));
    return { name, price: grown(price, prices.length) };
  });
  const same = (update: UpdatePayload) => JSON.stringify(update.stocks) === JSON.stringify(stocks);
  const what = `${client.name}: the update with every acknowledged buy`;
  const wait = { timeoutMs: 3_000, what, ...since };
  await client.events.waitFor((event) => isUpdate(event) && same(event.update), wait);
}

/** Spies on the ticker host's ops (undo with jest.restoreAllMocks()): whatever the realtime layer
 * lets through reaches the child by one of them. Returns the check that none was called. */
export function spyOnOps(ticker: TickerHost): () => void {
  const spies = (['start', 'stop', 'buy'] as const).map((op) => jest.spyOn(ticker, op));
  return () => spies.forEach((spy) => expect(spy).not.toHaveBeenCalled());
}

/** GET /healthz: 200 with the ticker child's pid. */
export async function healthyPid(url: string): Promise<number> {
  const response = await fetch(`${url}/healthz`);
  const body = (await response.json()) as { ok: unknown; pid: unknown };
  expect([response.status, body.ok, typeof body.pid]).toEqual([200, true, 'number']);
  return body.pid as number;
}

/** A request with any headers, Host included (fetch does not let a caller choose it), or an
 * upgrade; the body as text, and as it came (`raw`: not decoded). */
export async function rawRequest(
  url: string,
  pathname: string,
  headers: Record<string, string>,
  method = 'GET',
) {
  const { port } = new URL(url);
  const options = { host: '127.0.0.1', port, path: pathname, method, headers, agent: false };
  const answer = new Promise<[IncomingMessage, Buffer]>((resolve, reject) => {
    const req = httpRequest(options, (res) => {
      buffer(res).then((raw) => resolve([res, raw]), reject);
    });
    // An accepted WebSocket upgrade: the 101 is the answer.
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve([res, Buffer.alloc(0)]);
    });
    req.on('error', reject).end();
  });
  const [res, raw] = await withDeadline(answer, 3_000, `${method} ${pathname.slice(0, 40)}`);
  return { status: res.statusCode ?? 0, headers: res.headers, body: raw.toString(), raw };
}
