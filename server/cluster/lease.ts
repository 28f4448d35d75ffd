/** The leader lease: one Redis key with a fencing epoch, acquired and bumped in one script so no
 * two terms share an epoch. Renew and state writes check holder and term inside Redis, so a node
 * that lost the lease and writes late is refused whatever it believes. */
import type { RedisClientType } from 'redis';

export type RedisClient = RedisClientType;

/** The lease (the holder's token, with a TTL), the last epoch handed out, and the ticker state
 * (protocol/cluster StoredState), written by the holder only. */
export const clusterKeys = (prefix = 'forkcast:') => ({
  lease: `${prefix}leader`,
  epoch: `${prefix}epoch`,
  state: `${prefix}state`,
});
type ClusterKeys = ReturnType<typeof clusterKeys>;

/** KEYS: lease, epoch. ARGV: token, ttl. The new epoch, or the holder's token if taken. */
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return redis.call('GET', KEYS[1])`;

/** KEYS: lease. ARGV: token, ttl. 1 if still ours (and extended), else 0. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** KEYS: lease. ARGV: token. Gives the lease up at once (a clean shutdown) if still ours. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** KEYS: lease, epoch, state. ARGV: token, epoch, state JSON. The fence: only the current holder
 * in the current term writes. 1 if written, else 0. */
const WRITE_STATE = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[3], ARGV[3])
  return 1
end
return 0`;

export type Acquired = { held: true; epoch: number } | { held: false; holder: string | null };

export class LeaderLease {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: ClusterKeys,
    /** Unique to this node (and fresh per process), so a restarted node is a new holder. */
    readonly token: string,
    readonly ttlMs: number,
  ) {}

  async tryAcquire(): Promise<Acquired> {
    const { lease, epoch } = this.keys;
    const reply = await this.run(ACQUIRE, [lease, epoch], String(this.ttlMs));
    if (typeof reply === 'number') return { held: true, epoch: reply };
    // Ours already (a previous term of this process whose release was lost): not a new term.
    return { held: false, holder: typeof reply === 'string' ? reply : null };
  }

  async renew(): Promise<boolean> {
    return (await this.run(RENEW, [this.keys.lease], String(this.ttlMs))) === 1;
  }

  async release(): Promise<void> {
    await this.run(RELEASE, [this.keys.lease]);
  }

  /** Writes `state` if this node still holds the lease in term `epoch`. */
  async writeState(epoch: number, state: string): Promise<boolean> {
    const { lease, epoch: epochKey, state: stateKey } = this.keys;
    return (await this.run(WRITE_STATE, [lease, epochKey, stateKey], String(epoch), state)) === 1;
  }

  private run(script: string, keys: string[], ...args: string[]): Promise<unknown> {
    return this.redis.eval(script, { keys, arguments: [this.token, ...args] });
  }
}
