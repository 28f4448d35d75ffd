/** Joins a cluster: the Redis connections, the Socket.IO adapter and the cluster ticker host,
 * wired to each other. main.ts hands the result to createApp(). */
import { createClient } from 'redis';
import type { Server } from 'socket.io';

import type { UpdatePayload } from '../../protocol/events';
import type { Logger } from '../logger';
import type { ForkcastIo } from '../io';
import { ClusterTickerHost } from './cluster-host';
import { createClusterFanout, newestUpdateInStream, type ClusterFanout } from './fanout';
import type { RedisClient } from './lease';

export interface ClusterNodeOptions {
  redisUrl: string;
  tickMs: number;
  childPath: string;
  seed: UpdatePayload;
  logger: Logger;
  /** Where updates are emitted; read when the first one is (after createApp). */
  io: () => ForkcastIo;
  onRestart?: () => void;
}

export interface ClusterNode {
  ticker: ClusterTickerHost;
  adapter: ClusterFanout['adapter'];
  /** Closes the Redis connections; after the app (and so the host) has closed. */
  close(): Promise<void>;
}

const STREAM = 'forkcast:stream';
/** A room nobody is in: a broadcast to it only shows that this node reads the stream. */
const MARKER_ROOM = 'forkcast:marker';
const MARKER_EVERY_MS = 200;
/** How far back a starting node looks for the newest update among the stream's entries. */
const CATCH_UP_ENTRIES = 5_000;

/** Recovery needs a window's worth of entries (one per update and status): keep twice that,
 * never fewer than Socket.IO's default. */
function streamLength(tickMs: number, windowMs: number): number {
  return Math.max(10_000, Math.ceil((windowMs / tickMs) * 2));
}

export async function joinCluster(
  options: ClusterNodeOptions,
  recoveryWindowMs: number,
): Promise<ClusterNode> {
  const { logger } = options;
  const clients: RedisClient[] = [];
  const connect = async (name: string, offlineQueue: boolean): Promise<RedisClient> => {
    const client = createClient({
      url: options.redisUrl,
      disableOfflineQueue: !offlineQueue,
      // Back off to at most 1 s between attempts, forever: Redis coming back is the normal end.
      socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1_000) },
    }) as RedisClient;
    let down = false;
    client.on('error', (error: unknown) => {
      // Logged once per outage, not at every reconnect attempt.
      if (!down)
        logger.error(
          { err: error, connection: name },
          'cannot reach Redis; retrying until it answers',
        );
      down = true;
    });
    client.on('ready', () => {
      if (down) logger.info({ connection: name }, 'reconnected to Redis');
      down = false;
    });
    clients.push(client);
    await client.connect();
    return client;
  };

  // Commands fail fast while Redis is away; the adapter keeps its queue, so what it publishes
  // during a blip goes out when Redis is back.
  const redis = await connect('commands', false);
  const subscriber = await connect('subscriber', false);
  const adapterClient = await connect('adapter', true);

  // Before greeting anyone, find the newest update in the stream (the stored state can run one
  // ahead), and only once this node reads the stream itself, so no update falls in between.
  let streamLive = false;
  let wake: (() => void) | null = null;
  const catchUp = async (): Promise<unknown> => {
    while (!streamLive) {
      (options.io() as unknown as Server).to(MARKER_ROOM).emit('forkcast:marker');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, MARKER_EVERY_MS);
      });
    }
    return newestUpdateInStream(redis, STREAM, CATCH_UP_ENTRIES);
  };

  const ticker = new ClusterTickerHost({
    catchUp,
    redis,
    subscriber,
    publish: (update) => fanout.publishUpdate(update),
    childPath: options.childPath,
    tickMs: options.tickMs,
    seed: options.seed,
    logger: logger.child({ part: 'cluster' }),
    ...(options.onRestart ? { onRestart: options.onRestart } : {}),
  });
  const fanout = createClusterFanout(adapterClient, {
    streamName: STREAM,
    maxLen: streamLength(options.tickMs, recoveryWindowMs),
    onUpdate: (update, offset) => ticker.observeUpdate(update, offset),
    onStatus: (status) => ticker.observeStatus(status),
    onError: (error) => logger.error({ err: error }, 'handling a cluster broadcast failed'),
    onStreamEntry: () => {
      streamLive = true;
      wake?.();
    },
  });

  return {
    ticker,
    adapter: fanout.adapter,
    async close() {
      // A connection that is down has nothing to flush: dropped at once, not waited for.
      await Promise.all(
        clients.map(async (client) => {
          if (client.isReady) await client.close().catch(() => undefined);
          else client.destroy();
        }),
      );
    },
  };
}
