/** Joins a cluster: the Redis connections, the Socket.IO adapter and the cluster ticker host,
 * wired to each other. main.ts hands the result to createApp(). */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';

import { ClusterTickerHost, type ClusterHostOptions } from './cluster-host';
import type { RedisClient } from './lease';
import { STREAM_KEY } from './stream';

export async function joinCluster(
  { redisUrl, logger, ...host }: ClusterHostOptions & { redisUrl: string },
  recoveryWindowMs: number,
) {
  const connect = async (name: string, offlineQueue: boolean): Promise<RedisClient> => {
    const client = createClient({
      url: redisUrl,
      disableOfflineQueue: !offlineQueue,
      // At most 1 s between attempts, forever: Redis coming back is the normal end.
      socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1_000) },
    }) as RedisClient;
    // Logged once per outage, not at every reconnect attempt.
    let down = false;
    client.on('error', (error: unknown) => {
      if (!down) logger.error({ err: error, connection: name }, 'cannot reach Redis; retrying');
      down = true;
    });
    client.on('ready', () => {
      if (down) logger.info({ connection: name }, 'reconnected to Redis');
      down = false;
    });
    await client.connect();
    return client;
  };

  // Commands fail fast while Redis is away; the adapter's connection queues, so what it sends in
  // a blip goes out after.
  const commands = await connect('commands', false);
  const adapterClient = await connect('adapter', true);
  const reader = await connect('stream', true);
  // Recovery replays a window's worth of entries (one per update and status): twice that is kept.
  const maxLen = Math.max(10_000, Math.ceil((recoveryWindowMs / host.tickMs) * 2));
  const adapter = createAdapter(adapterClient, { streamName: STREAM_KEY, maxLen });
  const ticker = new ClusterTickerHost(
    { ...host, logger: logger.child({ part: 'cluster' }) },
    { commands, adapter: adapterClient, reader },
    maxLen,
  );
  return {
    ticker,
    adapter,
    /** After the app (and so the host) has closed. */
    async close(): Promise<void> {
      // The blocking read would hold a graceful close up; a connection that is down has nothing
      // to flush.
      reader.destroy();
      const close = async (client: RedisClient): Promise<void> =>
        client.isReady ? client.close().catch(() => undefined) : client.destroy();
      await Promise.all([commands, adapterClient].map(close));
    },
  };
}
