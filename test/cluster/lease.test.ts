/** The leader lease against a real redis-server: one holder at a time, a new epoch per term, and a
 * deposed holder's renewals and state writes refused by Redis itself. */
import { createClient, type RedisClientType } from 'redis';

import { KEYS, LeaderLease } from '../../server/cluster/lease';
import { delay } from '../helpers/recorder';
import { findRedisServer, startRedis, type RedisServer } from '../helpers/redis-server';

const binary = findRedisServer();
// Renewals TTL / 3 apart: a busy machine may hold one up by most of a TTL without losing it.
const TTL_MS = 1_000;

(binary ? describe : describe.skip)('LeaderLease', () => {
  let redis: RedisServer, client: RedisClientType;
  let a: LeaderLease, b: LeaderLease;

  beforeAll(async () => {
    redis = await startRedis(binary ?? '');
    client = await createClient({ url: redis.url }).connect();
  });

  afterAll(async () => {
    await client?.close();
    await redis?.dispose();
  });

  beforeEach(async () => {
    await client.flushAll();
    a = new LeaderLease(client, 'node-a', TTL_MS);
    b = new LeaderLease(client, 'node-b', TTL_MS);
  });

  test('one holder at a time, kept by renewals past its TTL, released at once and only by its holder; the others learn who holds it; one already ours is taken again at once in a new term', async () => {
    expect(await a.tryAcquire()).toEqual({ held: true, epoch: 1 });
    expect(await b.renew()).toBe(false);
    for (let i = 0; i < 4; i++) {
      await delay(TTL_MS / 3);
      expect(await a.renew()).toBe(true);
    }
    await b.release();
    expect(await b.tryAcquire()).toEqual({ held: false, holder: 'node-a' });
    await a.release();
    expect(await b.tryAcquire()).toEqual({ held: true, epoch: 2 });
    // As after an acquire that landed once its caller had given up.
    expect(await b.tryAcquire()).toEqual({ held: true, epoch: 3 });
  });

  test('an epoch Redis cannot bump (not a number) fails the acquire loudly and leaves the lease free', async () => {
    await client.set(KEYS.epoch, 'abc');
    await expect(a.tryAcquire()).rejects.toThrow('not an integer');
    expect(await client.exists(KEYS.lease)).toBe(0);
  });

  test("a write needs the current epoch as well as the lease; run out, the lease goes to the next term, and the deposed leader's renewals and writes are refused", async () => {
    await a.tryAcquire();
    await client.set(KEYS.epoch, '7');
    expect(await a.writeState(1, '{"seq":1}')).toBe(false);
    expect(await a.writeState(7, '{"seq":1}')).toBe(true);
    expect(await b.writeState(7, '{"seq":1}')).toBe(false);
    // The old leader stalls past its TTL (a GC pause, a partition); another node takes over.
    await delay(TTL_MS + 50);
    expect(await b.tryAcquire()).toEqual({ held: true, epoch: 8 });
    expect(await b.writeState(8, '{"seq":2}')).toBe(true);
    // Back from its stall, the old leader still believes it leads: Redis says otherwise.
    expect(await a.writeState(7, '{"seq":99}')).toBe(false);
    expect(await a.renew()).toBe(false);
    expect(await client.get(KEYS.state)).toBe('{"seq":2}');
  });

  test('a Redis that stops answering, its connection up, fails commands rather than hang: a renewal at its own shorter limit, before a read at the default', async () => {
    redis.pause();
    try {
      const settled: string[] = [];
      const failed = (what: string) => (error: Error) =>
        void settled.push(`${what}: ${error.message}`);
      // The read asks first: only a renewal held to its own shorter limit fails before it.
      const read = a.readState().catch(failed('read'));
      await Promise.all([read, a.renew(300).catch(failed('renew'))]);
      const late = 'Redis did not answer in time';
      expect(settled).toEqual([`renew: ${late}`, `read: ${late}`]);
    } finally {
      redis.resume();
    }
  });
});
