/** Joins a cluster: the Redis connections, the Socket.IO adapter and the cluster ticker host,
 * wired to each other. main.ts hands the result to createApp(). */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { createClient } from 'redis';

import { ClusterTickerHost, type ClusterHostOptions } from './cluster-host';
import type { RedisClient } from './lease';
import { STREAM_KEY } from './stream';

export interface ClusterNodeOptions extends ClusterHostOptions {
  redisUrl: string;
}

export interface ClusterNode {
  ticker: ClusterTickerHost;
  adapter: ReturnType<typeof createAdapter>;
  /** Closes the Redis connections; after the app (and so the host) has closed. */
  close(): Promise<void>;
}

export async function joinCluster(
  { redisUrl, logger, ...host }: ClusterNodeOptions,
  recoveryWindowMs: number,
): Promise<ClusterNode> {
  const connect = async (name: string, offlineQueue: boolean): Promise<RedisClient> => {
    const client = createClient({
      url: redisUrl,
      disableOfflineQueue: !offlineQueue,
      // Back off to at most 1 s between attempts, forever: Redis coming back is the normal end.
      socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1_000) },
    }) as RedisClient;
    let down = false;
    client.on('error', (error: unknown) => {
      // Logged once per outage, not at every reconnect attempt.
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

  // Commands fail fast while Redis is away; the adapter's connection (and the two it duplicates
  // to read the stream and subscribe) queue instead, so what it sends in a blip goes out after.
  const redis = await connect('commands', false);
  const adapterClient = await connect('adapter', true);
  const reader = await connect('stream', true);
  // Recovery needs a window's worth of entries (one per update and status): twice that is kept,
  // never fewer than Socket.IO's default.
  const maxLen = Math.max(10_000, Math.ceil((recoveryWindowMs / host.tickMs) * 2));
  const adapter = createAdapter(adapterClient, { streamName: STREAM_KEY, maxLen });
  const ticker = new ClusterTickerHost(
    { ...host, logger: logger.child({ part: 'cluster' }) },
    { commands: redis, adapter: adapterClient, reader },
    maxLen,
  );
  return {
    ticker,
    adapter,
    async close() {
      // A connection that is down has nothing to flush: dropped at once, not waited for.
      const close = async (client: RedisClient): Promise<void> => {
        if (client.isReady) await client.close().catch(() => undefined);
        else client.destroy();
      };
      // Its blocking read would hold a graceful close up.
      reader.destroy();
      await Promise.all([redis, adapterClient].map(close));
    },
  };
}
