/**
 * The durability promises under fire: a real server process on one shared STATE_FILE is
 * SIGKILLed at random instants (while two clients buy, right after a buy ack, or while it is
 * still starting), then started again on the same file. Rounds alternate between the ticker
 * stopped, where every acknowledged buy must be on disk and no more buys than were sent (counted
 * exactly), and running, where ticks race the kill. Across all rounds: equal seqs always carry
 * equal prices; a restarted server's broadcasts are past every seq seen before the kill; seq
 * grows by exactly one while a server runs, each update being one tick or some buys on the one
 * before. The choices come from a seeded generator: a failure names its seed, and
 * FORKCAST_CRASH_SEED=<seed> replays them (FORKCAST_CRASH_ROUNDS: more rounds).
 */
import { readFileSync } from 'node:fs';

import type { BuyAck, Stock } from '../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { savedStateSchema } from '../../protocol/validation';
import type { SavedState } from '../../server/state-file';
import { decayAll, decayed, grown, SEED } from '../helpers/prices';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { delay, withDeadline } from '../helpers/recorder';
import { TestClient } from '../helpers/server';
import { freshStateFile, type ServerProcess } from '../helpers/server-process';

/** Two of each kind of kill with the ticker stopped, two running; a soak only tries more instants. */
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

/** One buy a client sent, with its ack if one came before the connection went down. */
interface SentBuy {
  name: StockName;
  ack?: BuyAck;
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
  for (let n = 0; price <= to; n++) {
    if (price === to) return n;
    price = grown(price);
  }
  return null;
}

/**
 * With the ticker stopped, each stock's price on disk is its price in `base` after n buys, where
 * n is at least the highest count an ack reported and at most the number sent; acks report
 * distinct counts. Returns the problem, if any.
 */
function checkBuys(base: readonly Stock[], after: readonly Stock[], buys: readonly SentBuy[]) {
  for (const [s, { name, price }] of base.entries()) {
    const sent = buys.filter((buy) => buy.name === name);
    const counts = sent.flatMap(({ ack }) =>
      ack?.ok ? [buysBetween(price, ack.stock.price) ?? -1] : [],
    );
    const onDisk = buysBetween(price, after[s]!.price);
    const fits =
      onDisk !== null &&
      onDisk <= sent.length &&
      counts.every((count) => count >= 1 && count <= onDisk) &&
      new Set(counts).size === counts.length;
    if (!fits)
      return `${name}: ${onDisk} buys on disk, acks at ${counts.join(',')}, ${sent.length} sent`;
  }
  return null;
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
  /** Two clients buy until the kill; then everything they saw and got is checked. */
  async function killWhileTrading(
    server: ServerProcess,
    kind: KillKind,
    running: boolean,
  ): Promise<void> {
    const url = await server.url(15_000);
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
    const maxBefore = maxSeen;
    for (const client of clients) {
      const greeting = client.lastUpdate();
      if (greeting.seq < maxBefore) fail('a greeting went back', { greeting, maxBefore });
    }
    const first = a.lastUpdate();
    if (file) expectStartedFrom(file, first, false);
    else if (!same(first.stocks, SEED) || first.seq !== 0) fail('not the seed', first);
    if (first.running !== running) await (running ? a.start() : a.stop());
    // Everything broadcast before the ack has reached both: with the ticker stopped, the state
    // every buy applies to.
    await Promise.all([a.sync(), b.sync()]);
    const base = a.lastUpdate();

    const buys: SentBuy[] = [];
    let killed = false;
    const killServer = (): void => {
      if (!killed) server.process.kill('SIGKILL');
      killed = true;
    };
    const killAtBuyAck = kind === 'right after a buy ack' ? 1 + Math.floor(random() * 6) : 0;

    /** One buy at a time from one client until the kill, each awaited until its ack or the kill. */
    async function trade(client: TestClient): Promise<void> {
      while (!killed) {
        const buy: SentBuy = { name: pick(STOCK_NAMES) };
        buys.push(buy);
        const acked = new Promise<void>((resolve) =>
          client.socket.emit('buy', buy.name, (ack: BuyAck) => {
            buy.ack = ack;
            if (buys.filter((sent) => sent.ack).length === killAtBuyAck) killServer();
            resolve();
          }),
        );
        const what = `${client.name}: the ack of a buy`;
        await withDeadline(Promise.race([acked, server.exited]), 3_000, what);
        // Pacing only: some buys back to back, some a conflation window or so apart.
        if (!killed && random() < 0.5) await delay(random() * 25);
      }
    }

    const timer = setTimeout(
      killServer,
      // After a buy ack: a fallback, should the acks be slow in coming.
      kind === 'after a delay' ? random() * MAX_KILL_DELAY_MS : 1_500,
    );
    try {
      await Promise.all([trade(a), trade(b)]);
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
        const ticked = update.stocks.every(
          (stock, s) => stock.price === decayed(previous.stocks[s]!.price),
        );
        const counts = update.stocks.map((stock, s) =>
          buysBetween(previous.stocks[s]!.price, stock.price),
        );
        const bought = counts.every((count) => count !== null) && counts.some((count) => count);
        if (!ticked && !bought) {
          fail(`${client.name}: an update that is neither one tick nor buys`, {
            previous,
            update,
          });
        }
      }
      maxSeen = Math.max(maxSeen, ...updates.map((update) => update.seq));
    }

    // On disk, prices go with the seq they were or will be broadcast under, unless marked.
    if (after.seq < maxSeen) fail('the file is behind what clients saw', { after, maxSeen });
    if (!after.unannounced) observe(after, 'the state file');
    const refused = buys.filter((buy) => buy.ack?.ok === false);
    if (refused.length > 0) fail('buys were refused', refused);
    if (after.running !== running) fail('the acknowledged start or stop was lost', after);
    const problem = running ? null : checkBuys(base.stocks, after.stocks, buys);
    if (problem) fail(problem, { base, after, buys });

    acked += buys.filter((buy) => buy.ack).length;
    unanswered += buys.filter((buy) => !buy.ack).length;
    file = after;
  }

  try {
    for (let index = 1; index <= ROUNDS; index++) {
      if (index > MIN_ROUNDS && performance.now() - began > BUDGET_MS) break;
      // In turn, so that every kind is hit in every run; the first has no file to start on.
      const kind = KINDS[(index - 1) % KINDS.length]!;
      // Each kind with the ticker stopped, then each with it running, and again.
      const running = Math.ceil(index / KINDS.length) % 2 === 0;
      where = `round ${index} (ticker ${running ? 'running' : 'stopped'}, killed ${kind})`;
      rounds = index;
      const server = spawnTracked({
        LOG_LEVEL: 'info',
        TICK_MS: String(TICK_MS),
        STATE_FILE,
        OPS_PER_SECOND: '10000',
      });
      if (kind === 'while starting' && file) await killWhileStarting(server, file);
      else await killWhileTrading(server, kind, running);
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
