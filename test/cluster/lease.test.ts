/**
 * The leader lease against a real redis-server: one holder at a time, a new epoch per term,
 * and a deposed holder's renewals and state writes refused by Redis itself.
 */
import { createClient } from 'redis';

import { findRedisServer, startRedis, type RedisServer } from '../helpers/redis-server';
import { KEYS, LeaderLease, type RedisClient } from '../../server/cluster/lease';
import { delay } from '../helpers/recorder';

const binary = findRedisServer();
const describeWithRedis = binary ? describe : describe.skip;

describeWithRedis('LeaderLease', () => {
  const TTL_MS = 300;
  let redis: RedisServer;
  let client: RedisClient;

  beforeAll(async () => {
    if (!binary) return;
    redis = await startRedis(binary);
    client = createClient({ url: redis.url });
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await redis?.dispose();
  });

  beforeEach(async () => {
    await client.flushAll();
  });

  test('one holder at a time; the others learn who holds it', async () => {
    const a = new LeaderLease(client, 'node-a', TTL_MS);
    const b = new LeaderLease(client, 'node-b', TTL_MS);
    expect(await a.tryAcquire()).toEqual({ held: true, epoch: 1 });
    expect(await b.tryAcquire()).toEqual({ held: false, holder: 'node-a' });
    expect(await b.renew()).toBe(false);
    expect(await a.renew()).toBe(true);
  });

  test('renewing keeps it past its TTL; without renewals it runs out', async () => {
    const a = new LeaderLease(client, 'node-a', TTL_MS);
    const b = new LeaderLease(client, 'node-b', TTL_MS);
    await a.tryAcquire();
    for (let i = 0; i < 4; i++) {
      await delay(TTL_MS / 3);
      expect(await a.renew()).toBe(true);
    }
    expect(await b.tryAcquire()).toEqual({ held: false, holder: 'node-a' });
    await delay(TTL_MS + 50);
    expect(await b.tryAcquire()).toEqual({ held: true, epoch: 2 });
  });

  test("a deposed leader's renewals and late writes are refused; the new term's go through", async () => {
    const old = new LeaderLease(client, 'node-a', TTL_MS);
    const next = new LeaderLease(client, 'node-b', TTL_MS);
    const first = await old.tryAcquire();
    expect(first).toEqual({ held: true, epoch: 1 });
    expect(await old.writeState(1, '{"seq":1}')).toBe(true);

    // The old leader stalls past its TTL (a GC pause, a partition); another node takes over.
    await delay(TTL_MS + 50);
    expect(await next.tryAcquire()).toEqual({ held: true, epoch: 2 });
    expect(await next.writeState(2, '{"seq":2}')).toBe(true);

    // Back from its stall, the old leader still believes it leads: Redis says otherwise.
    expect(await old.writeState(1, '{"seq":99}')).toBe(false);
    expect(await old.renew()).toBe(false);
    expect(await client.get(KEYS.state)).toBe('{"seq":2}');
  });

  test('a write needs the current epoch as well as the lease', async () => {
    const a = new LeaderLease(client, 'node-a', TTL_MS);
    await a.tryAcquire();
    await client.set(KEYS.epoch, '7');
    expect(await a.writeState(1, '{"seq":1}')).toBe(false);
    expect(await a.writeState(7, '{"seq":1}')).toBe(true);
  });

  test('release hands it over at once, and only by its holder', async () => {
    const a = new LeaderLease(client, 'node-a', TTL_MS * 10);
    const b = new LeaderLease(client, 'node-b', TTL_MS * 10);
    await a.tryAcquire();
    await b.release();
    expect(await b.tryAcquire()).toEqual({ held: false, holder: 'node-a' });
    await a.release();
    expect(await b.tryAcquire()).toEqual({ held: true, epoch: 2 });
  });
});
