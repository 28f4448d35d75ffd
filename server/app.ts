/** createApp(): ticker, Express, Socket.IO, realtime; nothing listens or forks until listen(). */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import express from 'express';

import { STATUS } from '../protocol/events';
import { mountApi } from './api';
import { hostCheck } from './hosts';
import { createHttpApp, type HttpOptions } from './http';
import { createIo, type IoOptions } from './io';
import { createMetrics } from './metrics';
import { attachRealtime, type RealtimeOptions } from './realtime';
import { createEventStream } from './stream';
import type { TickerHost } from './ticker-host';
import { TickerSupervisor, type SupervisorOptions } from './ticker-supervisor';

export interface AppConfig
  extends
    Pick<HttpOptions, 'logger' | 'clientDir' | 'devServer' | 'trustProxy'>,
    Pick<IoOptions, 'allowedOrigins' | 'transports' | 'adapter'>,
    Pick<RealtimeOptions, 'opsPerSecond' | 'controlToken' | 'stallMs'>,
    Pick<SupervisorOptions, 'tickMs' | 'initialState' | 'store'> {
  /** Use this ticker instead of forking one (a cluster node's). */
  ticker?: TickerHost;
  allowedHosts?: readonly string[];
}

export type ForkcastApp = ReturnType<typeof createApp>;

export function createApp(config: AppConfig) {
  const { logger } = config;
  const metrics = createMetrics(() => io.sockets.sockets.size);
  const ticker =
    config.ticker ??
    new TickerSupervisor({
      ...config,
      logger: logger.child({ part: 'ticker' }),
      // A hook, not 'lost': a crash loop is one outage but many forks.
      onRestart: () => metrics.tickerRestarted(),
    });
  const hostServed = hostCheck(config.allowedHosts ?? [], logger);
  // Filled below, once the ops it serves exist; /api/START and /api/stop/ are no routes of it.
  const api = express.Router({ caseSensitive: true, strict: true });
  const app = createHttpApp({ ...config, ticker, metrics, hostServed, api });
  const httpServer = createServer(app);
  // Every TCP connection, WebSockets too, for close() to cut; one `forget`, not a closure each.
  const connections = new Set<Socket>();
  function forget(this: Socket): void {
    connections.delete(this);
  }
  httpServer.on('connection', (socket: Socket) => connections.add(socket.on('close', forget)));
  const io = createIo(httpServer, { ...config, hostServed });
  const stream = createEventStream(ticker, logger.child({ part: 'stream' }));
  const realtime = attachRealtime(io, ticker, {
    ...config,
    logger: logger.child({ part: 'realtime' }),
    metrics,
    also: stream.publish,
  });
  mountApi(api, { ...config, ticker, perform: realtime.perform, stream, logger });

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    // Stop accepting first, so nobody joins a server that is going away.
    const httpClosed = httpServer.listening && once(httpServer.close(), 'close');
    // This node's clients only: in a cluster the others stay up.
    const bye = { message: STATUS.shuttingDown, running: ticker.snapshot().running };
    io.local.emit('status', bye);
    stream.publish({ event: 'status', payload: bye });
    stream.close();
    realtime.detach();
    // Waits for the last state writes; fails (non-zero exit) if the state could not be kept.
    const tickerClosed = ticker.close();
    const closed = tickerClosed.catch(() => undefined); // its failure is thrown at the end
    // Ops in flight are refused, or acked once saved: answered before the sockets go (1 s at most).
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    // io.close() waits for every connection to end, which a silent peer can put off forever.
    const cut = setTimeout(() => connections.forEach((socket) => socket.destroy()), 1_000);
    await Promise.all([io.close(), httpClosed]).finally(() => clearTimeout(cut));
    await tickerClosed;
  };

  return {
    httpServer,
    io,
    ticker,
    /** This app's instruments (a host built outside createApp reports its restarts here). */
    metrics,
    /** Starts the ticker, then accepts connections. Port 0 picks a free port. */
    async listen(port: number, host?: string): Promise<AddressInfo> {
      await ticker.open();
      await once(httpServer.listen(port, host), 'listening');
      return httpServer.address() as AddressInfo;
    },
    /** Tells clients, disconnects them, closes HTTP and stops the ticker. Safe to call twice. */
    close: (): Promise<void> => (closing ??= close()),
  };
}
