/**
 * The durability promises under fire: a real server process on one shared STATE_FILE is
 * SIGKILLed at random instants (while two clients buy, start and stop and the ticker ticks,
 * right after a buy ack, or while it is still starting), then started again on the same file.
 * Across all rounds: equal seqs always carry equal prices; a restarted server's broadcasts are
 * past every seq seen before the kill; seq grows by exactly one while a server runs, each
 * update being one tick or some buys on the one before; and no acknowledged op is lost, nor
 * more buys applied than were sent. The choices come from a seeded generator: a failure names
 * its seed, and FORKCAST_CRASH_SEED=<seed> replays them (FORKCAST_CRASH_ROUNDS: more rounds).
 */
import { readFileSync } from 'node:fs';

import type { BuyAck, RunAck, Stock } from '../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { savedStateSchema } from '../../protocol/validation';
import type { SavedState } from '../../server/state-file';
import { decayAll, decayed, grown, SEED } from '../helpers/prices';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { delay, withDeadline } from '../helpers/recorder';
import { TestClient } from '../helpers/server';
import { freshStateFile, type ServerProcess } from '../helpers/server-process';

/** Four of each kind of kill; more rounds (a soak) only try more instants. */
const ROUNDS = Number(process.env['FORKCAST_CRASH_ROUNDS'] ?? 12);
const SEED_VALUE = Number(process.env['FORKCAST_CRASH_SEED'] ?? Date.now() % 2 ** 31);
/** No new round starts after this long once MIN_ROUNDS have run: a bound for a slow machine. */
const BUDGET_MS = 45_000;
const MIN_ROUNDS = 10;
const TICK_MS = 50;
/** The longest random wait before a kill, counted from the first op. */
const MAX_KILL_DELAY_MS = 400;

jest.setTimeout(100_000);

afterAll(async () => {
  await cleanUpServers();
});

/** mulberry32: small, seedable, good enough to pick instants and ops. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const KINDS = ['after a delay', 'right after a buy ack', 'while starting'] as const;
type KillKind = (typeof KINDS)[number];

/** One op a client sent, with its ack if one came before the connection went down. */
interface SentOp {
  kind: 'buy' | 'start' | 'stop';
  client: string;
  /** The stock, for a buy. */
  name?: StockName;
  ack?: BuyAck | RunAck;
}

/** The price an acknowledged buy reported; null for any other op or outcome. */
function boughtAt(op: SentOp): number | null {
  return op.ack?.ok === true && 'stock' in op.ack ? op.ack.stock.price : null;
}

/** What a state file becomes when a server starts on it: unannounced buys take the next seq. */
function loaded(file: SavedState): { stocks: Stock[]; seq: number } {
  return { stocks: file.stocks, seq: file.seq + (file.unannounced ? 1 : 0) };
}

function readState(file: string): SavedState {
  const parsed = savedStateSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`not a valid state file: ${parsed.error.message}`);
  return parsed.data;
}

function decayTimes(stocks: readonly Stock[], times: number): Stock[] {
  let result = stocks.map((stock) => ({ ...stock }));
  for (let i = 0; i < times; i++) result = decayAll(result);
  return result;
}

const same = (a: readonly Stock[], b: readonly Stock[]): boolean =>
  JSON.stringify(a) === JSON.stringify(b);

/** How many buys take `from` exactly to `to` (0 if equal), or null if no number does. */
function buysBetween(from: number, to: number): number | null {
  let price = from;
  for (let n = 0; n <= 64 && price <= to; n++) {
    if (price === to) return n;
    price = grown(price);
  }
  return null;
}

/**
 * hits[k][m]: some order of k ticks and m buys takes `from` exactly to `to`. Floats do not
 * quite commute, so every order counts; they nearly do, so each cell holds only a few prices.
 */
function stepsBetween(from: number, to: number, maxTicks: number, maxBuys: number): boolean[][] {
  const hits: boolean[][] = [];
  let above: Set<number>[] = [];
  for (let k = 0; k <= maxTicks; k++) {
    const row: Set<number>[] = [];
    for (let m = 0; m <= maxBuys; m++) {
      const cell = new Set<number>(k === 0 && m === 0 ? [from] : []);
      for (const price of k > 0 ? (above[m] ?? []) : []) cell.add(decayed(price));
      for (const price of m > 0 ? (row[m - 1] ?? []) : []) cell.add(grown(price));
      row.push(cell);
    }
    hits.push(row.map((cell) => cell.has(to)));
    above = row;
  }
  return hits;
}

/**
 * Whether `after` is `base` after k ticks (the same k for every stock, at most `maxTicks`) and,
 * for each stock, between its acknowledged and its sent number of buys, in some order; and
 * after each acknowledged buy's own price. Returns the problem, if any.
 */
function checkBuys(
  base: readonly Stock[],
  after: readonly Stock[],
  ops: readonly SentOp[],
  maxTicks: number,
): string | null {
  /** Per tick count that fits every stock so far: the fewest unacknowledged buys it needs. */
  let fits = new Map(Array.from({ length: maxTicks + 1 }, (_v, k) => [k, 0]));
  for (const [s, name] of STOCK_NAMES.entries()) {
    const buys = ops.filter((op) => op.kind === 'buy' && op.name === name);
    const acked = buys.flatMap((op) => {
      const price = boughtAt(op);
      return price === null ? [] : [price];
    });
    const target = after[s]!.price;
    for (const price of acked) {
      const fromAck = stepsBetween(price, target, maxTicks, buys.length - 1);
      if (!fromAck.some((row) => row.includes(true))) {
        return `the acknowledged buy of ${name} at ${price} is not in the file`;
      }
    }
    const fromBase = stepsBetween(base[s]!.price, target, maxTicks, buys.length);
    const next = new Map<number, number>();
    for (const [k, extra] of fits) {
      const m = fromBase[k]!.findIndex((hit, count) => hit && count >= acked.length);
      if (m >= 0) next.set(k, extra + m - acked.length);
    }
    fits = next;
  }
  return fits.size === 0
    ? 'the file is not the greeting plus the acknowledged (and some sent) buys'
    : null;
}

test(`${ROUNDS} SIGKILLs of a real server at random instants: no seq reused, no acknowledged op lost`, async () => {
  const random = generator(SEED_VALUE);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const STATE_FILE = freshStateFile();
  /** seq -> the prices first seen under it, and where. */
  const bySeq = new Map<number, { stocks: Stock[]; where: string }>();
  let maxSeen = -1;
  /** The state file after the last kill (null before the first). */
  let file: SavedState | null = null;
  const began = performance.now();
  let where = 'before the first round';
  let rounds = 0;
  let acked = 0;
  let unanswered = 0;

  const fail = (problem: string, details?: unknown): never => {
    const extra = details === undefined ? '' : `\n${JSON.stringify(details, null, 1)}`;
    throw new Error(`${where}: ${problem}${extra}`);
  };

  /** Records what a client (or the file) holds; a seq must always come with the same prices. */
  function observe(update: { seq: number; stocks: Stock[] }, who: string): void {
    const known = bySeq.get(update.seq);
    if (!known) bySeq.set(update.seq, { stocks: update.stocks, where: `${where}, ${who}` });
    else if (!same(known.stocks, update.stocks)) {
      fail(`seq ${update.seq} reused with other prices`, { first: known, now: update, who });
    }
  }

  /**
   * `state` is what a server started on `from` holds before any op: the loaded state, ticked on
   * if running. `untouched`: or the file as it was (killed before the server wrote it back).
   */
  function expectStartedFrom(
    from: SavedState,
    state: { stocks: Stock[]; seq: number; running: boolean; unannounced?: boolean },
    untouched: boolean,
  ): void {
    if (untouched && state.seq === from.seq && same(state.stocks, from.stocks)) return;
    const start = loaded(from);
    const ticks = state.seq - start.seq;
    const fits =
      ticks >= 0 &&
      (ticks === 0 || from.running) &&
      state.running === from.running &&
      state.unannounced !== true &&
      same(state.stocks, decayTimes(start.stocks, ticks));
    if (!fits) fail('a restarted server does not hold the state on disk', { file: from, state });
  }

  async function exited(server: ServerProcess): Promise<void> {
    const exit = await withDeadline(server.exited, 5_000, 'the killed server to exit');
    if (exit.signal !== 'SIGKILL') fail('the server exited before the kill', exit);
  }

  /** A server killed at a random instant of its start, before any client. */
  async function killWhileStarting(server: ServerProcess, previous: SavedState): Promise<void> {
    // From before the file is read to a few ticks after listening.
    await delay(random() * 1_000);
    server.process.kill('SIGKILL');
    await exited(server);
    const after = readState(STATE_FILE);
    expectStartedFrom(previous, after, true);
    if (after.seq < maxSeen) fail('the file went back behind what clients saw', { after, maxSeen });
    if (!after.unannounced) observe(after, 'the state file');
    file = after;
  }

  /** Two clients trade until the kill; then everything they saw and got is checked. */
  async function killWhileTrading(server: ServerProcess, kind: KillKind): Promise<void> {
    const { url } = await server.listening();
    const clients: TestClient[] = [];
    for (const name of ['a', 'b']) {
      const client = await TestClient.connect(url, `${name}${rounds}`);
      clients.push(client);
      await client.welcome();
    }
    const [a, b] = clients as [TestClient, TestClient];
    const disconnected = clients.map(
      (client) => new Promise<void>((resolve) => client.socket.once('disconnect', () => resolve())),
    );
    const greetings = clients.map((client) => client.lastUpdate());
    const maxBefore = maxSeen;
    for (const greeting of greetings) {
      if (greeting.seq < maxBefore) fail('a greeting went back', { greeting, maxBefore });
    }
    const first = greetings[0]!;
    if (file) expectStartedFrom(file, first, false);
    else if (!same(first.stocks, SEED) || first.seq !== 0) fail('not the seed', first);
    // Every op is sent after both greetings: the later one is what they all apply to.
    const base = greetings.reduce((x, y) => (y.seq > x.seq ? y : x));

    const ops: SentOp[] = [];
    let killed = false;
    const killServer = (): void => {
      if (!killed) server.process.kill('SIGKILL');
      killed = true;
    };
    const killAtBuyAck = kind === 'right after a buy ack' ? 1 + Math.floor(random() * 6) : 0;
    let buyAcks = 0;

    /** Sends one op; resolves on its ack or once the server is gone, whichever comes first. */
    function send(op: SentOp, client: TestClient): Promise<unknown> {
      ops.push(op);
      const acked = new Promise<void>((resolve) => {
        const onAck = (ack: BuyAck | RunAck): void => {
          op.ack = ack;
          if (op.kind === 'buy' && ++buyAcks === killAtBuyAck) killServer();
          resolve();
        };
        if (op.kind === 'buy') client.socket.emit('buy', op.name ?? 'Apple', onAck);
        else client.socket.emit(op.kind, onAck);
      });
      return withDeadline(
        Promise.race([acked, server.exited]),
        3_000,
        `${client.name}: ack of ${op.kind}`,
      );
    }

    /** One op at a time from one client until the kill; only `a` starts and stops. */
    async function trade(client: TestClient, runOps: boolean): Promise<void> {
      while (!killed) {
        if (runOps && random() < 0.12) {
          await send({ kind: random() < 0.5 ? 'start' : 'stop', client: client.name }, client);
        } else {
          await send({ kind: 'buy', client: client.name, name: pick(STOCK_NAMES) }, client);
        }
        // Pacing only: some ops back to back, some a conflation window or so apart.
        if (!killed && random() < 0.5) await delay(random() * 25);
      }
    }

    if (random() < 0.4) await send({ kind: first.running ? 'stop' : 'start', client: a.name }, a);
    const timer = setTimeout(
      killServer,
      // After a buy ack: a fallback, should the acks be slow in coming.
      kind === 'after a delay' ? random() * MAX_KILL_DELAY_MS : 1_500,
    );
    try {
      await Promise.all([trade(a, true), trade(b, false)]);
    } finally {
      clearTimeout(timer);
      killServer();
    }
    await exited(server);
    // Whatever was on its way to the clients has arrived once their connections are closed;
    // an ack arriving now was given before the kill, and counts.
    await withDeadline(Promise.all(disconnected), 5_000, 'the clients to see the server gone');
    for (const client of clients) client.close();
    const after = readState(STATE_FILE);

    // While a server runs, seq grows by exactly one, and each update is one tick or some buys
    // on the one before (a tick is always an update of its own).
    for (const client of clients) {
      const updates = client.updates;
      for (const [n, update] of updates.entries()) {
        observe(update, client.name);
        const previous = updates[n - 1];
        if (!previous) continue;
        if (update.seq <= maxBefore) {
          fail(`${client.name} got a broadcast not past every seq seen before`, {
            update,
            maxBefore,
          });
        }
        if (update.seq !== previous.seq + 1)
          fail(`${client.name} saw seq jump`, { previous, update });
        const ticked = same(update.stocks, decayAll(previous.stocks));
        const buys = update.stocks.map((stock, s) =>
          buysBetween(previous.stocks[s]!.price, stock.price),
        );
        const bought = buys.every((count) => count !== null) && buys.some((count) => count !== 0);
        if (!ticked && !bought) {
          fail(`${client.name}: an update that is neither one tick nor buys`, {
            previous,
            update,
            ops,
          });
        }
      }
      maxSeen = Math.max(maxSeen, ...updates.map((update) => update.seq));
    }

    // On disk, prices go with the seq they were or will be broadcast under, unless marked.
    if (after.seq < maxSeen) fail('the file is behind what clients saw', { after, maxSeen });
    if (!after.unannounced) observe(after, 'the state file');

    const refused = ops.filter((op) => op.ack?.ok === false);
    if (refused.length > 0) fail('ops were refused', refused);
    // The running flag: that of a's last acknowledged start or stop, or of one sent after it.
    const runOps = ops.filter((op) => op.kind !== 'buy');
    const lastAcked = runOps.findLastIndex((op) => op.ack !== undefined);
    const allowed = new Set([lastAcked >= 0 ? runOps[lastAcked]!.kind === 'start' : base.running]);
    for (const op of runOps.slice(lastAcked + 1)) allowed.add(op.kind === 'start');
    if (!allowed.has(after.running)) {
      fail('an acknowledged start or stop was lost', { after, ops });
    }
    // Each tick takes a seq, so there were at most this many.
    const problem = checkBuys(base.stocks, after.stocks, ops, after.seq - base.seq);
    if (problem) fail(problem, { base, after, ops });

    acked += ops.filter((op) => op.ack).length;
    unanswered += ops.filter((op) => !op.ack).length;
    file = after;
  }

  try {
    for (let index = 1; index <= ROUNDS; index++) {
      if (index > MIN_ROUNDS && performance.now() - began > BUDGET_MS) break;
      // In turn, so that every kind is hit in every run; the first has no file to start on.
      const kind = KINDS[(index - 1) % KINDS.length]!;
      where = `round ${index} (killed ${kind})`;
      rounds = index;
      const server = spawnTracked({
        LOG_LEVEL: 'info',
        TICK_MS: String(TICK_MS),
        STATE_FILE,
        OPS_PER_SECOND: '10000',
      });
      if (kind === 'while starting' && file) await killWhileStarting(server, file);
      else await killWhileTrading(server, kind);
    }
  } catch (error) {
    if (error instanceof Error) {
      error.message = `[seed ${SEED_VALUE}: replay with FORKCAST_CRASH_SEED=${SEED_VALUE}] ${error.message}`;
    }
    throw error;
  }

  expect(rounds).toBeGreaterThanOrEqual(Math.min(ROUNDS, MIN_ROUNDS));
  // The rounds did what they are for: ops were acknowledged, and kills cut some short.
  expect(acked).toBeGreaterThan(rounds);
  expect(unanswered).toBeGreaterThan(0);
});
