/** Three real server processes on one real redis-server (loopback), as a load balancer would put
 * them. The tests run in order on one cluster; each leaves it running with three nodes. */
import { findRedisServer, startRedis, type RedisServer } from '../helpers/redis-server';
import { createClient } from 'redis';
import { io } from 'socket.io-client';

import type { HistoryPayload, UpdatePayload } from '../../protocol/events';
import { decayAll, priceOf } from '../helpers/prices';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { delay, withDeadline } from '../helpers/recorder';
import { isStatus, isUpdate, TestClient } from '../helpers/server';
import type { LogLine, ServerProcess } from '../helpers/server-process';

const TICK_MS = 100;
const ENV = { TICK_MS: String(TICK_MS), LOG_LEVEL: 'info' };

interface Node {
  server: ServerProcess;
  url: string;
}
type Health = Record<'status' | 'node' | 'role' | 'redis', string> & {
  leader: string | null;
  pid: number | null;
};

function fail(message: string): never {
  throw new Error(message);
}

const binary = findRedisServer();
const describeCluster = binary ? describe : describe.skip;
/** The minute of leader churn is a soak, run by `npm run test:soak`, not by `npm test`. */
const soak = process.env['FORKCAST_SOAK'] === '1' ? test : test.skip;

describeCluster('a cluster of three nodes on one Redis', () => {
  let redis: RedisServer;
  let nodes: Node[] = [];
  const clients: TestClient[] = [];

  async function startNode(server = spawnTracked({ REDIS_URL: redis.url, ...ENV })): Promise<Node> {
    const node = { server, url: await server.url() };
    nodes.push(node);
    return node;
  }

  const nodeAt = (index: number): Node => nodes[index] ?? fail(`no node ${index}`);
  const health = (node: Node): Promise<Health | null> =>
    fetch(`${node.url}/healthz`).then(
      (response) => response.json() as Promise<Health>,
      () => null,
    );

  /** Polls every node's /healthz until `pick` finds what it wants in them, with a deadline. */
  async function untilNodes<T>(
    pick: (all: (Health | null)[]) => T | undefined,
    what: string,
    timeoutMs = 5_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const all = await Promise.all(nodes.map(health));
      const found = pick(all);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(all)}`);
      await delay(50);
    }
  }

  /** The one node that says it leads and runs a ticker child, named by every node. */
  const leader = (timeoutMs?: number): Promise<Node> =>
    untilNodes(
      (all) => {
        const leaders = all.filter((node) => node?.role === 'leader' && node.pid !== null);
        const named = all.every((node) => node?.leader === leaders[0]?.node);
        return leaders.length === 1 && named ? nodes[all.indexOf(leaders[0] ?? null)] : undefined;
      },
      'no single leader',
      timeoutMs,
    );

  /** Waits until every node's /healthz passes `check`. */
  const everyNode = (check: (node: Health | null) => boolean, what: string): Promise<boolean> =>
    untilNodes((all) => all.every(check) || undefined, what);

  async function kill(node: Node, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    nodes = nodes.filter((other) => other !== node);
    node.server.process.kill(signal);
    await withDeadline(node.server.exited, 5_000, 'a node to exit');
  }

  async function join(node: Node, name: string): Promise<TestClient> {
    const client = await TestClient.connect(node.url, name);
    clients.push(client);
    await client.welcome();
    return client;
  }

  const updatesOf = (client: TestClient, from = 0): UpdatePayload[] =>
    client.events
      .since(from)
      .filter(isUpdate)
      .map((event) => event.update);

  /** Each update's seq is one more than the one before it at this client. */
  function expectSeqRunsOn(updates: readonly UpdatePayload[]): void {
    const seqs = updates.map((update) => update.seq);
    const breaks = seqs.flatMap((seq, i) => (i > 0 && seq !== (seqs[i - 1] ?? 0) + 1 ? [i] : []));
    expect({ seqs, breaks }).toEqual({ seqs, breaks: [] });
  }

  /** Every update after the first is the previous one's prices, decayed once: no reset, no jump. */
  function expectPricesRunOn(updates: readonly UpdatePayload[]): void {
    const jumps = updates.flatMap((update, i) => {
      const before = updates[i - 1];
      if (!before) return [];
      const same = JSON.stringify(update.stocks) === JSON.stringify(decayAll(before.stocks));
      return same ? [] : [{ from: before, to: update }];
    });
    expect(jumps).toEqual([]);
  }

  async function ensureRunning(client: TestClient): Promise<void> {
    expect((await client.start()).ack).toEqual({ ok: true, running: true });
  }

  /** Runs the ticker, then stops it and waits for "Stopped": every update before it has come. */
  async function stopAndSettle(client: TestClient): Promise<void> {
    await ensureRunning(client);
    const mark = client.events.mark;
    expect((await client.stop()).ack).toEqual({ ok: true, running: false });
    await client.waitForStatus('Stopped', { from: mark });
  }

  /** A buy's update at `client`: sent after anything the cluster had sent, so it proves that
   * nothing more is on its way. */
  async function buyAndWait(client: TestClient): Promise<UpdatePayload> {
    const mark = client.events.mark;
    expect((await client.buy('Facebook')).ack).toMatchObject({ ok: true });
    return client.nextUpdate({ from: mark });
  }

  beforeAll(async () => {
    if (!binary) return;
    redis = await startRedis(binary);
    await Promise.all([0, 1, 2].map(() => startNode()));
    await leader(10_000);
  }, 30_000);

  afterEach(() => {
    for (const client of clients.splice(0)) client.socket.close();
  });

  afterAll(async () => {
    await cleanUpServers();
    await redis.dispose();
  }, 15_000);

  test('a broadcast reaches the clients of every node: the same updates, in the same order', async () => {
    const [a, b, c] = await Promise.all(nodes.map((node, i) => join(node, `client${i}`)));
    if (!a || !b || !c) throw new Error('three nodes expected');
    const marks = [a, b, c].map((client) => client.events.mark);
    await ensureRunning(b);
    await Promise.all(
      [a, b, c].map((client, i) => client.waitForUpdates(8, { from: marks[i] ?? 0 })),
    );
    expect((await c.stop()).ack).toEqual({ ok: true, running: false });
    await Promise.all(
      [a, b, c].map((client, i) => client.waitForStatus('Stopped', { from: marks[i] ?? 0 })),
    );
    await Promise.all([a, b, c].map(buyAndWait));

    const seen = [a, b, c].map((client, i) => updatesOf(client, marks[i]));
    // The same updates at every client, from the first seq all three got to the last.
    const first = Math.max(...seen.map((updates) => updates[0]?.seq ?? 0));
    const last = Math.min(...seen.map((updates) => updates.at(-1)?.seq ?? 0));
    expect(last - first).toBeGreaterThanOrEqual(5);
    const window = seen.map((updates) =>
      updates.filter((update) => update.seq >= first && update.seq <= last),
    );
    expect(window[1]).toEqual(window[0]);
    expect(window[2]).toEqual(window[0]);
    for (const updates of seen) expectSeqRunsOn(updates);
    // Every node sends "Stopped" after the updates that came before it: none says running after.
    for (const [i, client] of [a, b, c].entries()) {
      const events = client.events.since(marks[i] ?? 0);
      const stopped = events.findIndex(
        (event) => isStatus(event) && event.status.message === 'Stopped',
      );
      const after = events.slice(stopped).filter(isUpdate);
      expect(after.filter((event) => event.update.running)).toEqual([]);
    }
  });

  test('an op sent to a follower is applied once, by the leader, and acknowledged to the sender', async () => {
    const lead = await leader();
    const followers = nodes.filter((node) => node !== lead);
    const [asker, watcher] = [
      await join(followers[0] ?? lead, 'asker'),
      await join(followers[1] ?? lead, 'watcher'),
    ];
    await stopAndSettle(asker);
    const before = asker.lastUpdate();
    const mark = watcher.events.mark;

    const bought = await asker.buy('Apple');
    const price = priceOf(before.stocks, 'Apple');
    expect(bought.ack).toEqual({
      ok: true,
      stock: { name: 'Apple', price: price + price / 10 },
    });
    const update = await watcher.nextUpdate({ from: mark });
    expect(update.seq).toBe(before.seq + 1);
    expect(priceOf(update.stocks, 'Apple')).toBe(price + price / 10);
    // Applied once: one update, then the next op's.
    const next = await buyAndWait(watcher);
    expect(updatesOf(watcher, mark)).toEqual([update, next]);
    expect(next.seq).toBe(update.seq + 1);

    // Stop while stopped, through a follower: acknowledged, to the asker only.
    const quiet = watcher.events.mark;
    expect((await asker.stop()).ack).toEqual({ ok: true, running: false });
    await watcher.sync();
    expect(watcher.events.since(quiet)).toEqual([]);
  });

  test('SIGKILL of the leader: another node takes over within 3 s; prices, running and seq run on', async () => {
    const lead = await leader();
    const others = nodes.filter((node) => node !== lead);
    const watchers = await Promise.all(others.map((node, i) => join(node, `watcher${i}`)));
    const [first] = watchers;
    if (!first) throw new Error('two followers expected');
    await ensureRunning(first);
    await Promise.all(watchers.map((client) => client.waitForUpdates(5, { from: 0 })));

    const killedAt = performance.now();
    const marks = watchers.map((client) => client.events.mark);
    const lastBefore = first.lastUpdate();
    await kill(lead, 'SIGKILL');
    // Until the dead leader's lease runs out nobody leads: an op is refused at once, clearly.
    const meanwhile = await first.buy('Apple');
    expect(meanwhile.ack).toEqual({
      ok: false,
      error: 'no ticker leader is elected right now; try again in a moment',
    });
    const next = await first.events.waitFor(
      (event) => isUpdate(event) && event.update.seq > lastBefore.seq,
      { from: marks[0] ?? 0, timeoutMs: 5_000, what: 'an update from the new leader' },
    );
    const takeoverMs = next.at - killedAt;
    process.stdout.write(
      `cluster failover: first update ${takeoverMs.toFixed(0)} ms after SIGKILL\n`,
    );
    expect(takeoverMs).toBeLessThan(3_000);

    await Promise.all(
      watchers.map((client, i) => client.waitForUpdates(5, { from: marks[i] ?? 0 })),
    );
    for (const client of watchers) {
      const updates = updatesOf(client);
      expectSeqRunsOn(updates);
      expectPricesRunOn(updates.filter((update) => update.running));
      expect(updatesOf(client, marks[0]).every((update) => update.running)).toBe(true);
    }
    await startNode();
  });

  soak(
    'two nodes never tick at once: ticks per second over a minute with six leader changes',
    async () => {
      const watchers = await Promise.all(nodes.map((node, i) => join(node, `observer${i}`)));
      const watched = new Map(watchers.map((client, i) => [client, nodes[i]]));
      await ensureRunning(watchers[0] ?? fail('no observer'));
      const signals = ['SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM'] as const;
      const startedAt = Date.now();
      // Eight seconds of ticks (80 at 10 a second) between leader changes, seen by the newest
      // observer: a wait for updates, with a deadline, rather than a sleep.
      const ticksAfter = async (): Promise<void> => {
        const observer = watchers.at(-1) ?? fail('no observer');
        await observer.waitForUpdates(80, { from: observer.events.mark, timeoutMs: 20_000 });
      };
      for (const signal of signals) {
        await ticksAfter();
        const lead = await leader();
        await kill(lead, signal);
        // Observers on the node that went away are done; the rest keep watching.
        const replacement = await startNode();
        const observer = await join(replacement, `observer${watchers.length}`);
        watchers.push(observer);
        watched.set(observer, replacement);
      }
      await ticksAfter();
      const elapsed = Date.now() - startedAt;
      expect(elapsed).toBeGreaterThanOrEqual(55_000);

      // Every update any client saw, by seq: one update per seq, whoever delivered it.
      const bySeq = new Map<number, string>();
      const conflicts: number[] = [];
      for (const client of watchers) {
        const updates = updatesOf(client).filter((update) => update.running);
        expectSeqRunsOn(updates);
        for (const update of updates) {
          const text = JSON.stringify(update);
          const known = bySeq.get(update.seq);
          if (known !== undefined && known !== text) conflicts.push(update.seq);
          bySeq.set(update.seq, text);
        }
      }
      expect(conflicts).toEqual([]);
      // A node shutting down tells its own clients, not the whole cluster's.
      const alive = new Set(nodes);
      const survivors = watchers.filter((client) => {
        const node = watched.get(client);
        return node !== undefined && alive.has(node);
      });
      expect(survivors.length).toBeGreaterThan(0);
      for (const client of survivors)
        expect(client.statuses.map((status) => status.message)).not.toContain(
          'Server shutting down',
        );

      // Ticks per second by the servers' own timestamps: one ticker makes 1000 / TICK_MS.
      const stamps = [...bySeq.values()]
        .map((text) => (JSON.parse(text) as UpdatePayload).ts)
        .sort((x, y) => x - y);
      const perSecond = new Map<number, number>();
      for (const ts of stamps)
        perSecond.set(Math.floor(ts / 1_000), (perSecond.get(Math.floor(ts / 1_000)) ?? 0) + 1);
      const busiest = Math.max(...perSecond.values());
      process.stdout.write(
        `cluster ticks: ${stamps.length} over ${(elapsed / 1_000).toFixed(0)} s, at most ${busiest} in one second, ${signals.length} leader changes\n`,
      );
      expect(busiest).toBeLessThanOrEqual(1_000 / TICK_MS + 1);
      expect(stamps.length).toBeGreaterThan((elapsed / TICK_MS) * 0.6);
    },
    100_000,
  );

  test('Redis stopped and restarted: errors and "degraded" meanwhile, then the nodes carry on by themselves', async () => {
    const client = await join(nodeAt(0), 'survivor');
    await ensureRunning(client);
    await client.waitForUpdates(3, { from: 0 });
    const lastBefore = client.lastUpdate();

    await redis.stop();
    await everyNode((node) => node?.status === 'degraded' && node.redis === 'down', 'degraded');
    const refused = await client.buy('Apple');
    expect(refused.ack).toEqual({
      ok: false,
      error: 'the cluster cannot reach Redis right now; try again in a moment',
    });
    // The leader steps down once its lease runs out, and a leader is elected again once Redis is
    // back.
    await everyNode((node) => node?.role === 'follower', 'the leader to step down');
    const mark = client.events.mark;
    await redis.restart();
    const resumed = await client.events.waitFor(
      (event) => isUpdate(event) && event.update.seq > lastBefore.seq,
      {
        from: mark,
        timeoutMs: 15_000,
        what: 'updates again after Redis came back',
      },
    );
    expect(isUpdate(resumed) && resumed.update.running).toBe(true);
    await client.waitForUpdates(3, { from: mark });
    const updates = updatesOf(client);
    expectSeqRunsOn(updates);
    expectPricesRunOn(updates.filter((update) => update.running));
    expect(client.events.since(mark).filter(isStatus)).toEqual([]);
    const all = await Promise.all(nodes.map(health));
    expect(all.map((node) => node?.redis)).toEqual(['up', 'up', 'up']);
  }, 40_000);

  test('after Redis came back, only the leader takes ops: a buy through each node is applied once', async () => {
    // One node leads and the others name it: a deposed leader that still believed it led
    // through the outage would apply forwarded ops too.
    await leader();
    const roles = (await Promise.all(nodes.map(health))).map((node) => node?.role);
    expect(roles.sort()).toEqual(['follower', 'follower', 'leader']);

    const clients = await Promise.all(nodes.map((node, i) => join(node, `buyer${i}`)));
    const [watcher] = clients;
    if (!watcher) throw new Error('no client');
    await stopAndSettle(watcher);
    const first = watcher.events.mark;
    for (const buyer of clients) {
      // The watcher has had every earlier buy's update (waited for below); a buyer on another
      // node may not have yet.
      const before = priceOf(watcher.lastUpdate().stocks, 'Microsoft');
      const mark = watcher.events.mark;
      const bought = await buyer.buy('Microsoft');
      expect(bought.ack).toEqual({
        ok: true,
        stock: { name: 'Microsoft', price: before + before / 10 },
      });
      const update = await watcher.nextUpdate({ from: mark });
      expect(priceOf(update.stocks, 'Microsoft')).toBe(before + before / 10);
    }
    // One update per buy, then the next op's: no buy was applied a second time.
    await buyAndWait(watcher);
    expect(updatesOf(watcher, first)).toHaveLength(clients.length + 1);
  });

  test("the leader's history holds each update once", async () => {
    const lead = await leader();
    const client = await join(lead, 'historian');
    await ensureRunning(client);
    await client.waitForUpdates(4, { from: 0 });
    const socket = io(lead.url, { transports: ['websocket'], forceNew: true });
    try {
      const history = await withDeadline(
        new Promise<HistoryPayload>((resolve) => socket.once('history', resolve)),
        3_000,
        'history',
      );
      expectSeqRunsOn(history.updates);
      expect(history.updates.length).toBeGreaterThan(1);
    } finally {
      socket.close();
    }
  });

  test('a client that drops for a moment misses nothing, also when it comes back on another node', async () => {
    const [home, away] = nodes;
    if (!home || !away) throw new Error('two nodes expected');
    const client = await join(home, 'traveller');
    const witness = await join(away, 'witness');
    await ensureRunning(client);
    await client.waitForUpdates(3, { from: 0 });

    const gone = new Promise<void>((resolve) => client.socket.once('disconnect', () => resolve()));
    client.socket.io.engine.close();
    await gone;
    const dropped = client.events.mark;
    const lastBefore = client.lastUpdate();
    // Some updates go by while it is away.
    await witness.waitForUpdates(5, { from: witness.events.mark });
    // A load balancer may send it anywhere: the manager opens its next connection from `uri`.
    (client.socket.io as unknown as { uri: string }).uri = away.url;
    const back = new Promise<void>((resolve) => client.socket.once('connect', () => resolve()));
    client.socket.connect();
    await back;
    expect(client.socket.recovered).toBe(true);

    const missed = await client.waitForUpdates(8, { from: dropped });
    expect(missed[0]?.seq).toBe(lastBefore.seq + 1);
    expectSeqRunsOn(updatesOf(client));
  });

  test('the state outlives every node, and one saved with buys no update carried is greeted one seq later', async () => {
    const watcher = await join(nodeAt(0), 'before');
    await stopAndSettle(watcher);
    const last = watcher.lastUpdate();
    for (const node of [...nodes]) await kill(node, 'SIGTERM');
    // What a leader killed between a buy's ack and its update leaves in Redis; and a lease held
    // elsewhere, so that no node can lead and send that update yet.
    const store = createClient({ url: redis.url });
    await store.connect();
    const saved = JSON.parse((await store.get('forkcast:state')) ?? fail('no state')) as object;
    expect(saved).toEqual({
      ...last,
      running: false,
      unannounced: false,
      epoch: expect.any(Number),
    });
    const stocks = last.stocks.map((stock, i) =>
      i ? stock : { ...stock, price: stock.price * 1.1 },
    );
    await store.set('forkcast:state', JSON.stringify({ ...saved, stocks, unannounced: true }));
    await store.set('forkcast:leader', 'a node that died', { PX: 30_000 });

    const server = spawnTracked({ REDIS_URL: redis.url, ...ENV });
    const waiting = (line: LogLine): boolean =>
      line['msg'] === 'waiting for the update that carries the saved buys';
    await server.logs.waitFor(waiting, { timeoutMs: 10_000, what: 'a wait for the saved buys' });
    // Nobody is greeted while the saved prices have no seq of their own.
    expect(server.logs.items.filter((line) => line['msg'] === 'forkcast listening')).toEqual([]);
    await store.del('forkcast:leader');
    await store.quit();
    await Promise.all([startNode(server), startNode(), startNode()]);
    await leader(10_000);
    for (const index of [0, 1, 2]) {
      const { snapshot } = await (await join(nodeAt(index), `greeted by ${index}`)).welcome();
      expect(snapshot).toEqual({
        stocks,
        running: false,
        seq: last.seq + 1,
        ts: expect.any(Number),
      });
    }
    // And the ticker runs on from there.
    const after = clients.at(-1) ?? fail('no client');
    const mark = after.events.mark;
    await ensureRunning(after);
    expect((await after.nextUpdate({ from: mark })).seq).toBe(last.seq + 2);
    expectSeqRunsOn(updatesOf(after));
  }, 40_000);
});
