/** The HTTP API through three real server processes on one real redis-server: a real EventSource
 * on any node, ops by real fetch on any other. The tests run in order on one cluster. */
import type { EventSource } from 'eventsource';
import { createClient } from 'redis';

import type { BuyAck, UpdatePayload } from '../../protocol/events';
import { KEYS } from '../../server/cluster/lease';
import { cleanUpServers, spawnTracked } from '../helpers/processes';
import { delay, type Recorder, withDeadline } from '../helpers/recorder';
import { findRedisServer, startRedis, type RedisServer } from '../helpers/redis-server';
import { listenToStream, type StreamEvent } from '../helpers/server';
import type { ServerProcess } from '../helpers/server-process';

const ENV = { TICK_MS: '100', LOG_LEVEL: 'info' };
const WAIT = { timeoutMs: 10_000 };

interface Node {
  server: ServerProcess;
  url: string;
}
type Health = { node: string; role: string; leader: string | null; pid: number | null } | null;
const isUpdate = ({ type }: StreamEvent) => type === 'update';
const seqOf = ({ data }: StreamEvent) => (data as UpdatePayload).seq;

const post = (node: Node, op: string, body = {}) =>
  fetch(`${node.url}/api/${op}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });

/** The stream so far: every update, its seq one past the one before and its id; no resync. */
function expectEveryUpdate(events: Recorder<StreamEvent>): void {
  const updates = events.items.filter(isUpdate);
  const seqs = updates.map(seqOf);
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  expect(updates.map(({ id }) => id)).toEqual(seqs.map(String));
  expect(events.items.filter(({ type }) => type === 'resync')).toEqual([]);
}

const binary = findRedisServer();

(binary ? describe : describe.skip)('the HTTP API through a cluster of three nodes', () => {
  let redis: RedisServer;
  let nodes: Node[] = [];
  const sources: EventSource[] = [];

  /** Polls every node's /healthz until `check` passes, with a deadline. */
  async function until(check: (all: Health[]) => boolean, what: string): Promise<Health[]> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const all = await Promise.all(
        nodes.map(({ url }) =>
          fetch(`${url}/healthz`).then(
            (res) => res.json() as Promise<Health>,
            () => null,
          ),
        ),
      );
      if (check(all)) return all;
      if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(all)}`);
      await delay(50);
    }
  }

  /** The one node that leads and runs a ticker child, named by every node, and the others. */
  async function elected(): Promise<{ leader: Node; followers: Node[] }> {
    const leads = (node: Health) => node?.role === 'leader' && node.pid !== null;
    const all = await until(
      (all) =>
        all.filter(leads).length === 1 && all.every((n) => n?.leader === all.find(leads)?.node),
      'no single leader',
    );
    const i = all.findIndex(leads);
    return { leader: nodes[i]!, followers: nodes.filter((_, j) => j !== i) };
  }

  beforeAll(async () => {
    redis = await startRedis(binary ?? '');
    nodes = await Promise.all(
      [0, 1, 2].map(async () => {
        const server = spawnTracked({ REDIS_URL: redis.url, ...ENV });
        return { server, url: await server.url() };
      }),
    );
    await elected();
  }, 30_000);

  afterAll(async () => {
    for (const source of sources) source.close();
    await cleanUpServers();
    await redis.dispose();
  }, 15_000);

  test('a follower streams every update of the leader’s ticker, and a buy made on the other follower', async () => {
    const { leader, followers } = await elected();
    const [near, far] = followers as [Node, Node];
    const events = listenToStream(`${near.url}/api/stream`, sources);
    await events.waitFor(({ type }) => type === 'opening', { ...WAIT, what: 'the greeting' });
    expect(await (await post(leader, 'start')).json()).toEqual({ ok: true, running: true });
    await events.waitForCount(5, isUpdate, { ...WAIT, what: 'updates' });
    const ack = (await (await post(far, 'buy', { name: 'Apple' })).json()) as BuyAck;
    expect(ack).toEqual({ ok: true, stock: { name: 'Apple', price: expect.any(Number) } });
    await events.waitFor(
      (event) =>
        isUpdate(event) &&
        (event.data as UpdatePayload).stocks[0]!.price === (ack.ok && ack.stock.price),
      { ...WAIT, what: 'the bought price' },
    );
    expectEveryUpdate(events);
  });

  test('a stream whose node, the leader, is killed resumes on a survivor with no gap, no double', async () => {
    const { leader, followers } = await elected();
    const survivor = followers[0]!;
    expect((await post(leader, 'start')).status).toBe(200);
    // The EventSource reconnects by itself, with its Last-Event-ID, to wherever `target` says.
    let target = leader.url;
    const asked: string[] = [];
    const events = listenToStream(`${leader.url}/api/stream`, sources, (input, init) => {
      asked.push(target);
      return fetch(new URL(new URL(input).pathname, target), init);
    });
    await events.waitForCount(5, isUpdate, { ...WAIT, what: 'updates from the leader' });
    target = survivor.url;
    nodes = followers;
    leader.server.process.kill('SIGKILL');
    await withDeadline(leader.server.exited, 5_000, 'the leader to exit');
    const before = Math.max(...events.items.filter(isUpdate).map(seqOf));
    await events.waitFor((event) => isUpdate(event) && seqOf(event) >= before + 5, {
      timeoutMs: 15_000,
      what: 'updates from the new leader',
    });
    expect(asked).toEqual([leader.url, survivor.url]);
    expectEveryUpdate(events);
  });

  test('while no leader is elected an op over HTTP gets 503; once one is, it goes through', async () => {
    const store = createClient({ url: redis.url });
    await store.connect();
    // A lease no live node holds, as a dead leader's until it runs out: nobody may take over.
    await store.set(KEYS.lease, 'a node that died', { PX: 30_000 });
    await until(
      (all) => all.every((node) => node?.role === 'follower' && node.leader === 'a node that died'),
      'every node to follow the dead holder',
    );
    for (const node of nodes) {
      const res = await post(node, 'buy', { name: 'Apple' });
      expect([res.status, await res.json()]).toEqual([
        503,
        { ok: false, error: 'no ticker leader is elected right now; try again in a moment' },
      ]);
    }
    await store.del(KEYS.lease);
    await store.quit();
    const res = await post((await elected()).followers[0]!, 'buy', { name: 'Apple' });
    expect([res.status, await res.json()]).toEqual([200, { ok: true, stock: expect.any(Object) }]);
  });
});
