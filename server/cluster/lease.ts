/** The leader lease: one Redis key, with a fencing epoch bumped as it is taken so no two terms
 * share one. Redis checks holder and term on renew and write, so a deposed leader is refused. */
import type { RedisClientType } from 'redis';

import { within } from '../state-file';

/** The lease (the holder's token, with a TTL), the last epoch handed out, the holder's state. */
export const KEYS = { lease: 'forkcast:leader', epoch: 'forkcast:epoch', state: 'forkcast:state' };

// KEYS: lease, epoch. ARGV: token, ttl. The new epoch, or the holder's token if taken. The epoch
// first: if it cannot be bumped (not a number), the script stops with the lease left free.
const ACQUIRE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('GET', KEYS[1]) end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return epoch`;

// KEYS: lease. ARGV: token, ttl. 1 if still ours (and extended, or deleted by a ttl of 0), else 0.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// KEYS: lease, epoch, state. ARGV: token, epoch, state. 1 if written by the holder in its term.
const WRITE_STATE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[3], ARGV[3])
return 1`;

/** A Redis command slower than this fails: catches a Redis that stalls with the connection up. */
const TIMEOUT_MS = 1_000;
const LATE = 'Redis did not answer in time';

export class LeaderLease {
  constructor(
    private readonly redis: RedisClientType,
    readonly token: string,
    readonly ttlMs: number,
  ) {}

  /** Ours already (late acquire, lost release): a new term at once, whose epoch fences the old. */
  async tryAcquire(): Promise<{ held: true; epoch: number } | { held: false; holder: string }> {
    const reply = await this.run(ACQUIRE, [KEYS.lease, KEYS.epoch], [String(this.ttlMs)]);
    return typeof reply === 'number'
      ? { held: true, epoch: reply }
      : { held: false, holder: reply as string };
  }

  /** `timeoutMs`: the leader waits no longer than the lease lasts. */
  async renew(timeoutMs = TIMEOUT_MS): Promise<boolean> {
    return (await this.run(RENEW, [KEYS.lease], [String(this.ttlMs)], timeoutMs)) === 1;
  }

  async release(): Promise<void> {
    await this.run(RENEW, [KEYS.lease], ['0']);
  }

  async writeState(epoch: number, state: string): Promise<boolean> {
    const keys = [KEYS.lease, KEYS.epoch, KEYS.state];
    return (await this.run(WRITE_STATE, keys, [String(epoch), state])) === 1;
  }

  readState(): Promise<string | null> {
    return within(this.redis.get(KEYS.state), TIMEOUT_MS, LATE);
  }

  private run(script: string, keys: string[], args: string[] = [], ms = TIMEOUT_MS) {
    return within(this.redis.eval(script, { keys, arguments: [this.token, ...args] }), ms, LATE);
  }
}
