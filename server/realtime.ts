/** Maps socket events to ticker ops (with acks) and ticker output to broadcasts. Client arguments
 * are `unknown` until protocol/validation says otherwise. */
import { timingSafeEqual } from 'node:crypto';

import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Socket } from 'socket.io';

import type {
  AckError,
  BuyAck,
  ClientEventName,
  ClientToServerEvents,
  RunAck,
  ServerToClientEvents,
  StatusPayload,
} from '../protocol/events';
import { STATUS, type UpdatePayload } from '../protocol/events';
import { parseBuyArgs, parseNoArgs } from '../protocol/validation';
import { UpdateBroadcaster } from './broadcaster';
import type { ForkcastIo } from './io';
import type { Logger } from './logger';
import type { OpName, RealtimeMetrics, RejectReason } from './metrics';
import type { TickerHost } from './ticker-host';

type ForkcastSocket = Socket<ClientToServerEvents, ServerToClientEvents>;
type AnyAck = (result: RunAck | BuyAck) => void;

/** One event from one socket, from its arrival until it is answered. */
interface Received {
  readonly socket: ForkcastSocket;
  /** The event name as sent (cut short), for the error message and the log. */
  readonly event: string;
  readonly op: OpName;
  readonly args: unknown[];
  readonly ack: AnyAck | undefined;
  /** performance.now() on arrival, for the ack latency. */
  readonly at: number;
}

const CLIENT_EVENTS: ReadonlySet<string> = new Set<ClientEventName>(['start', 'stop', 'buy']);
const INTERNAL_ERROR = 'internal error; the operation may not have been applied';
const WATCH_ONLY_ERROR =
  'this server needs a control token to start, stop or buy (handshake auth.token); you may watch';
/** Start / stop statuses go to everyone at most this often, so one client toggling at the rate
 * limit cannot flood every client. */
const RUN_STATUS_MIN_INTERVAL_MS = 250;

export interface RealtimeOptions {
  logger: Logger;
  /** start / stop / buy allowed per connection per second; more are refused, not queued. */
  opsPerSecond: number;
  /** When set, only sockets whose handshake carries `auth: {token}` equal to it may send ops. */
  controlToken?: string | undefined;
  metrics: RealtimeMetrics;
}

/** Wires `io` to `ticker`. Returns a function that unwires it (used on shutdown). */
export function attachRealtime(
  io: ForkcastIo,
  ticker: TickerHost,
  { logger, opsPerSecond, controlToken, metrics }: RealtimeOptions,
): () => void {
  // One bucket per socket: a flooding client is refused without slowing anyone else.
  const limiter = new RateLimiterMemory({ points: opsPerSecond, duration: 1 });
  const rateError = `too many requests: at most ${opsPerSecond} start/stop/buy per second per connection`;
  const allowedToControl = (socket: ForkcastSocket): boolean =>
    controlToken === undefined || tokensMatch(socket.handshake.auth['token'], controlToken);

  const running = (): boolean => ticker.snapshot().running;
  const broadcaster = new UpdateBroadcaster(io, {
    onDelivered: (update, deliveries) => {
      metrics.broadcast(deliveries);
      ticker.delivered(update.seq);
    },
    onError: (error) => logger.error({ err: error }, 'reporting a delivered update failed'),
  });
  const onUpdate = (update: UpdatePayload, offset?: string): void =>
    broadcaster.publish(update, offset);
  const onLost = (): void => {
    broadcaster.publishStatus({ message: STATUS.tickerLost, running: running() });
  };
  const onBack = (): void => {
    broadcaster.publishStatus({ message: STATUS.tickerBack, running: running() });
  };
  ticker.on('update', onUpdate);
  ticker.on('lost', onLost);
  ticker.on('back', onBack);
  metrics.readClientsFrom(() => io.sockets.sockets.size);

  /** Writes straight to the Engine.IO connection broadcasts use: order holds and, unlike via the
   * adapter, nothing is stored for recovery. `volatile` would drop it right after a handshake. */
  const toSocket = (socket: ForkcastSocket) => ({
    emit<E extends keyof ServerToClientEvents>(
      event: E,
      payload: Parameters<ServerToClientEvents[E]>[0],
    ): void {
      // Socket.IO's encoding of an event on the main namespace without ack or binary.
      if (socket.connected) socket.conn.write(`2${JSON.stringify([event, payload])}`);
    },
  });

  function receive(socket: ForkcastSocket, event: string, op: OpName, raw: unknown[]): Received {
    return { socket, event, op, ...splitAck(raw), at: performance.now() };
  }

  function answered(received: Received, outcome: RejectReason | 'ok'): void {
    metrics.answered(received.op, outcome, (performance.now() - received.at) / 1_000);
  }

  /** Refuses through the ack if the client passed one, else with a status to it alone. */
  function reject(received: Received, reason: RejectReason, error: string): void {
    const { socket, event, ack } = received;
    logger.debug({ socket: socket.id, event, error }, 'rejected client input');
    const result: AckError = { ok: false, error };
    if (ack) ack(result);
    else
      toSocket(socket).emit('status', {
        message: `${event} rejected: ${error}`,
        running: running(),
      });
    answered(received, reason);
  }

  /** The checks every op passes before its arguments are even looked at; a refusal or null. */
  async function admit(
    socket: ForkcastSocket,
  ): Promise<{ reason: RejectReason; error: string } | null> {
    if (!allowedToControl(socket)) return { reason: 'forbidden', error: WATCH_ONLY_ERROR };
    try {
      await limiter.consume(socket.id);
      return null;
    } catch {
      return { reason: 'rate_limited', error: rateError };
    }
  }

  let lastRunStatusAt = Number.NEGATIVE_INFINITY;
  let trailingRunStatus: NodeJS.Timeout | null = null;
  /** What the last real start or stop answered: what a trailing status says. */
  let lastRunning = false;

  function runStatus(isRunning: boolean): StatusPayload {
    return { message: isRunning ? STATUS.started : STATUS.stopped, running: isRunning };
  }

  /** A real start or stop, announced at once or in one trailing status. Through the broadcaster,
   * so nobody hears "Stopped" before an older update that says running. */
  function announceRun(isRunning: boolean): void {
    lastRunning = isRunning;
    if (trailingRunStatus) return;
    const send = (): void => {
      trailingRunStatus = null;
      lastRunStatusAt = performance.now();
      broadcaster.publishStatus(runStatus(lastRunning));
    };
    const wait = lastRunStatusAt + RUN_STATUS_MIN_INTERVAL_MS - performance.now();
    if (wait <= 0) send();
    else trailingRunStatus = setTimeout(send, wait);
  }

  async function run(received: Received, event: 'start' | 'stop'): Promise<void> {
    const { socket, args, ack } = received;
    const refused = await admit(socket);
    if (refused) return reject(received, refused.reason, refused.error);
    const parsed = parseNoArgs(event, args);
    if (!parsed.ok) return reject(received, 'invalid', parsed.error);
    const reply = event === 'start' ? await ticker.start() : await ticker.stop();
    if (!reply.ok) return reject(received, 'unavailable', reply.error);
    // Everyone hears about a real change; a no-op (start while running) is news only to the asker.
    if (reply.changed) announceRun(reply.running);
    else toSocket(socket).emit('status', runStatus(reply.running));
    ack?.({ ok: true, running: reply.running });
    answered(received, 'ok');
  }

  async function buy(received: Received): Promise<void> {
    const { socket, args, ack } = received;
    const refused = await admit(socket);
    if (refused) return reject(received, refused.reason, refused.error);
    const parsed = parseBuyArgs(args);
    if (!parsed.ok) return reject(received, 'invalid', parsed.error);
    const reply = await ticker.buy(parsed.value);
    if (!reply.ok) return reject(received, 'unavailable', reply.error);
    // The new price reaches everyone (the asker too) through the conflated `update` broadcast.
    ack?.({ ok: true, stock: reply.stock });
    answered(received, 'ok');
  }

  /** Runs a handler so that a bug in it is logged and answered, never an unhandled rejection. */
  function guard(received: Received, handler: (received: Received) => Promise<void>): void {
    handler(received).catch((error: unknown) => {
      const { socket, event } = received;
      logger.error({ err: error, socket: socket.id, event }, 'handler failed');
      reject(received, 'internal', INTERNAL_ERROR);
    });
  }

  /** A late joiner gets current prices at once. During a broadcast the snapshot may be ahead of
   * updates queued for this socket, so it starts from the update going out instead. */
  function greet(socket: ForkcastSocket): void {
    broadcaster.assignShard(socket);
    const current = broadcaster.inFlight ?? ticker.snapshot();
    toSocket(socket).emit('update', current);
    const recent = broadcaster.history();
    toSocket(socket).emit('history', { updates: recent.length > 0 ? recent : [current] });
  }

  // Shared listeners, called with the socket as `this`: per-connection closures cost memory.
  function onStart(this: ForkcastSocket, ...raw: unknown[]): void {
    guard(receive(this, 'start', 'start', raw), (op) => run(op, 'start'));
  }
  function onStop(this: ForkcastSocket, ...raw: unknown[]): void {
    guard(receive(this, 'stop', 'stop', raw), (op) => run(op, 'stop'));
  }
  function onBuy(this: ForkcastSocket, ...raw: unknown[]): void {
    guard(receive(this, 'buy', 'buy', raw), buy);
  }
  function onAnyEvent(this: ForkcastSocket, event: unknown, ...raw: unknown[]): void {
    if (typeof event === 'string' && CLIENT_EVENTS.has(event)) return;
    const name = String(event).slice(0, 40);
    reject(receive(this, name, 'unknown', raw), 'invalid', `unknown event "${name}"`);
  }
  function onDisconnect(this: ForkcastSocket, reason: string): void {
    logger.debug({ socket: this.id, reason }, 'client left');
  }

  const onConnection = (socket: ForkcastSocket): void => {
    logger.debug({ socket: socket.id, recovered: socket.recovered }, 'client connected');
    toSocket(socket).emit('status', { message: STATUS.connected, running: running() });
    // A recovered socket was just sent what it missed, in order: a snapshot would repeat one.
    if (!socket.recovered) greet(socket);
    socket.on('start', onStart);
    socket.on('stop', onStop);
    socket.on('buy', onBuy);
    socket.onAny(onAnyEvent);
    socket.on('disconnect', onDisconnect);
  };
  io.on('connection', onConnection);

  return () => {
    broadcaster.stop();
    if (trailingRunStatus) clearTimeout(trailingRunStatus);
    trailingRunStatus = null;
    io.off('connection', onConnection);
    ticker.off('update', onUpdate);
    ticker.off('lost', onLost);
    ticker.off('back', onBack);
  };
}

/** Socket.IO passes the client's acknowledgement callback, if any, as the last argument. */
function splitAck(raw: unknown[]): { args: unknown[]; ack: AnyAck | undefined } {
  const last = raw.at(-1);
  if (typeof last !== 'function') return { args: raw, ack: undefined };
  return { args: raw.slice(0, -1), ack: last as AnyAck };
}

/** Compares a client-supplied token with the secret in constant time. */
function tokensMatch(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
