/** A real server on one STATE_FILE, SIGKILLed at a random instant while two clients buy (or right
 * after a buy ack), then started again on it: every acked op on disk, none applied twice, no seq
 * reused or gone back. FORKCAST_CRASH_SEED=<seed> replays a run (FORKCAST_CRASH_ROUNDS: more). */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual as same } from 'node:util';

import type { BuyAck, Stock } from '../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { savedStateSchema, type SavedState } from '../../protocol/validation';
import { decayAll, grown, stateOf } from '../helpers/prices';
import { delay, withDeadline } from '../helpers/recorder';
import { connectWelcomed, type TestClient } from '../helpers/server';
import { freshStateFile, killServers, spawnServer } from '../helpers/server-process';

const ROUNDS = Number(process.env['FORKCAST_CRASH_ROUNDS'] ?? 8);
const SEED_VALUE = Number(process.env['FORKCAST_CRASH_SEED'] ?? Date.now() % 2 ** 31);

jest.setTimeout(90_000);
afterAll(killServers);

/** A linear congruential generator: seedable, and good enough to pick instants and ops. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => (state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0) / 2 ** 32;
}

type KillAfter = 'delay' | 'ack' | 'send';

/** One buy a client sent, with its ack if one came before the connection went down. */
interface SentBuy {
  name: StockName;
  ack?: BuyAck;
}

/** How many buys take `from` exactly to `to` (0 if equal), or null if no number does. */
function buysBetween(from: number, to: number): number | null {
  for (let n = 0; grown(from, n) <= to; n++) if (grown(from, n) === to) return n;
  return null;
}

/** With the ticker stopped, each stock on disk has had n buys since `base`: at least the highest
 * count an ack reported, at most the number sent; acks report distinct counts. Or the problem. */
function checkBuys(base: readonly Stock[], after: readonly Stock[], buys: readonly SentBuy[]) {
  for (const [s, { name, price }] of base.entries()) {
    const sent = buys.filter((buy) => buy.name === name);
    const counts = sent.flatMap(({ ack }) =>
      ack?.ok ? [buysBetween(price, ack.stock.price) ?? -1] : [],
    );
    const onDisk = buysBetween(price, after[s]?.price ?? NaN);
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

test(`${ROUNDS} SIGKILLs of a real server at random instants (FORKCAST_CRASH_SEED=${SEED_VALUE}): no seq reused, no acknowledged op lost`, async () => {
  const random = generator(SEED_VALUE);
  const anyStock = (): StockName => STOCK_NAMES[Math.floor(random() * STOCK_NAMES.length)]!;
  const STATE_FILE = freshStateFile();
  /** seq -> the prices first seen under it, and where. */
  const bySeq = new Map<number, { stocks: Stock[]; where: string }>();
  let maxSeen = -1;
  /** The state file after the last kill. */
  let file: SavedState = { ...stateOf(), unannounced: false };
  let where = '';
  const allBuys: SentBuy[] = [];

  const fail = (problem: string, details?: unknown): never => {
    throw new Error(`${where}: ${problem}\n${JSON.stringify(details, null, 1)}`);
  };

  /** Records what a client (or the file) holds; a seq must always come with the same prices. */
  function observe(update: { seq: number; stocks: Stock[] }, who: string): void {
    const known = bySeq.get(update.seq);
    if (!known) bySeq.set(update.seq, { stocks: update.stocks, where: `${where}, ${who}` });
    else if (!same(known.stocks, update.stocks))
      fail(`seq ${update.seq} reused with other prices`, { first: known, now: update, who });
  }

  /** A server started on `from` holds it, ticked on if running; unannounced buys take a seq. */
  function expectStartedFrom(from: SavedState, state: Omit<SavedState, 'unannounced'>): void {
    const ticks = state.seq - from.seq - (from.unannounced ? 1 : 0);
    let stocks = from.stocks;
    for (let i = 0; i < ticks; i++) stocks = decayAll(stocks);
    const ticked = ticks === 0 || (ticks > 0 && from.running);
    if (!ticked || state.running !== from.running || !same(state.stocks, stocks))
      fail('a server does not start from the state on disk', { file: from, state });
  }

  /** Two clients buy, one at a time each, until the kill (at a random instant, or right after the
   * nth buy ack or send); then all they saw is checked. */
  async function round(index: number, running: boolean, killAfter: KillAfter, n: number) {
    const server = spawnServer({ TICK_MS: '50', STATE_FILE, OPS_PER_SECOND: '10000' });
    const { url } = await server.listening();
    const clients = await connectWelcomed(url, [], `a${index}`, `b${index}`);
    const [a, b] = clients as [TestClient, TestClient];
    const disconnected = clients.map(
      (client) => new Promise<void>((resolve) => client.socket.once('disconnect', () => resolve())),
    );
    const maxBefore = maxSeen;
    const first = a.lastUpdate();
    expectStartedFrom(file, first);
    // A running state resumes ticking without a start.
    if (file.running) await a.nextUpdate({ from: a.events.mark });
    if (first.running !== running) await (running ? a.start() : a.stop());
    // Every broadcast before the ack has reached both: with the ticker stopped, what buys apply to.
    await Promise.all([a.sync(), b.sync()]);
    const base = a.lastUpdate();

    const buys: SentBuy[] = [];
    let killed = false;
    const kill = (): void => {
      if (!killed) server.process.kill('SIGKILL');
      killed = true;
    };
    const trade = async (client: TestClient): Promise<void> => {
      while (!killed) {
        const buy: SentBuy = { name: anyStock() };
        buys.push(buy);
        const answered = new Promise<void>((resolve) =>
          client.socket.emit('buy', buy.name, (ack: BuyAck) => {
            buy.ack = ack;
            if (killAfter === 'ack' && buys.filter((sent) => sent.ack).length === n) kill();
            resolve();
          }),
        );
        if (killAfter === 'send' && buys.length === n) kill();
        await withDeadline(Promise.race([answered, server.exited]), 3_000, `${client.name}'s ack`);
        // Pacing only: some buys back to back, some a conflation window or so apart.
        if (!killed && random() < 0.5) await delay(random() * 25);
      }
    };
    // After a buy ack or send, the timer is a fallback, should the buys be slow in coming.
    const timer = setTimeout(kill, killAfter === 'delay' ? random() * 400 : 1_500);
    try {
      await Promise.all([trade(a), trade(b)]);
    } finally {
      clearTimeout(timer);
      kill();
    }
    const exit = await withDeadline(server.exited, 5_000, 'the killed server to exit');
    if (exit.signal !== 'SIGKILL') fail('the server exited before the kill', exit);
    // What was on its way has arrived once the connections closed; a late ack still counts.
    await withDeadline(Promise.all(disconnected), 5_000, 'the clients to see the server gone');
    for (const client of clients) {
      client.close();
      for (const [n, update] of client.updates.entries()) {
        observe(update, client.name);
        // The greeting may repeat the last seq seen; every broadcast after it is past it.
        if (update.seq < maxBefore + (n > 0 ? 1 : 0))
          fail(`${client.name} went back behind what was seen before`, { update, maxBefore });
        maxSeen = Math.max(maxSeen, update.seq);
      }
    }

    const after = savedStateSchema.parse(JSON.parse(readFileSync(STATE_FILE, 'utf8')));
    // On disk, prices go with the seq they were or will be broadcast under, unless marked.
    if (after.seq < maxSeen) fail('the file is behind what clients saw', { after, maxSeen });
    if (!after.unannounced) observe(after, 'the state file');
    const refused = buys.filter((buy) => buy.ack?.ok === false);
    if (refused.length > 0) fail('buys were refused', refused);
    if (after.running !== running) fail('the acknowledged start or stop was lost', after);
    const problem = running ? null : checkBuys(base.stocks, after.stocks, buys);
    if (problem) fail(problem, { base, after, buys });
    allBuys.push(...buys);
    file = after;
  }

  for (let index = 1; index <= ROUNDS; index++) {
    // Each kind of kill with the ticker stopped, then each with it running, and again.
    const running = index % 4 >= 2;
    // Even rounds right after an ack, or (6 and 8 of 8) a send: so some buy is surely cut short.
    const after = index % 2 === 1 ? 'delay' : (index - 1) % 8 < 4 ? 'ack' : 'send';
    const n = 1 + Math.floor(random() * 6);
    const kind = after === 'delay' ? 'after a delay' : `right after buy ${after} ${n}`;
    where = `round ${index} (ticker ${running ? 'running' : 'stopped'}, killed ${kind})`;
    await round(index, running, after, n);
  }
  // The rounds did what they are for: ops were acknowledged, and kills cut some short.
  expect(allBuys.filter((buy) => buy.ack).length).toBeGreaterThan(ROUNDS);
  expect(allBuys.filter((buy) => !buy.ack).length).toBeGreaterThan(0);
});
