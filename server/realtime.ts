/** Maps socket events to ticker ops (with acks) and ticker output to broadcasts. Client arguments
 * are `unknown` until protocol/validation says otherwise. */
import { timingSafeEqual } from 'node:crypto';

import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Socket } from 'socket.io';

import type {
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
import type { ForkcastMetrics, OpName, RejectReason } from './metrics';
import type { TickerHost } from './ticker-host';

type ForkcastSocket = Socket<ClientToServerEvents, ServerToClientEvents>;
type AnyAck = (result: RunAck | BuyAck) => void;

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
  metrics: ForkcastMetrics;
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

  const status = (message: string): StatusPayload => ({
    message,
    running: ticker.snapshot().running,
  });
  const broadcaster = new UpdateBroadcaster(io, {
    onDelivered: (update, deliveries) => {
      metrics.broadcast(deliveries);
      ticker.delivered(update.seq);
    },
    onError: (error) => logger.error({ err: error }, 'reporting a delivered update failed'),
  });
  const onUpdate = (update: UpdatePayload, offset?: string): void =>
    broadcaster.publish(update, offset);
  /** On one node everyone is this node's sockets; a cluster's host carries statuses itself. */
  const toEveryone = (payload: StatusPayload): void =>
    ticker.broadcastStatus ? ticker.broadcastStatus(payload) : broadcaster.publishStatus(payload);
  const onStatus = (payload: StatusPayload, offset?: string): void =>
    broadcaster.publishStatus(payload, offset);
  const onLost = (): void => toEveryone(status(STATUS.tickerLost));
  const onBack = (): void => toEveryone(status(STATUS.tickerBack));
  ticker.on('update', onUpdate);
  ticker.on('lost', onLost);
  ticker.on('back', onBack);
  ticker.on('status', onStatus);
  metrics.readClientsFrom(() => io.sockets.sockets.size);

  /** Writes straight to the Engine.IO connection broadcasts use: order holds and, unlike via the
   * adapter, nothing is stored for recovery. `volatile` would drop it right after a handshake. */
  function tell<E extends keyof ServerToClientEvents>(
    socket: ForkcastSocket,
    event: E,
    payload: Parameters<ServerToClientEvents[E]>[0],
  ): void {
    // Socket.IO's encoding of an event on the main namespace without ack or binary.
    if (socket.connected) socket.conn.write(`2${JSON.stringify([event, payload])}`);
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
      toEveryone(runStatus(lastRunning));
    };
    const wait = lastRunStatusAt + RUN_STATUS_MIN_INTERVAL_MS - performance.now();
    if (wait <= 0) send();
    else trailingRunStatus = setTimeout(send, wait);
  }

  /** One op from arrival to its ack or refusal: token, rate limit, arguments, then the ticker.
   * A refusal goes through the ack if the client passed one, else as a status to it alone. */
  async function handle(socket: ForkcastSocket, event: string, op: OpName, raw: unknown[]) {
    const at = performance.now();
    const last = raw.at(-1);
    const ack = typeof last === 'function' ? (last as AnyAck) : undefined;
    const args = ack ? raw.slice(0, -1) : raw;
    const answered = (outcome: RejectReason | 'ok'): void =>
      metrics.answered(op, outcome, (performance.now() - at) / 1_000);
    const refuse = (reason: RejectReason, error: string): void => {
      logger.debug({ socket: socket.id, event, error }, 'rejected client input');
      if (ack) ack({ ok: false, error });
      else tell(socket, 'status', status(`${event} rejected: ${error}`));
      answered(reason);
    };
    try {
      if (op === 'unknown') return refuse('invalid', `unknown event "${event}"`);
      if (!allowedToControl(socket)) return refuse('forbidden', WATCH_ONLY_ERROR);
      const limited = await limiter.consume(socket.id).then(
        () => false,
        () => true,
      );
      if (limited) return refuse('rate_limited', rateError);
      if (op === 'buy') {
        const parsed = parseBuyArgs(args);
        if (!parsed.ok) return refuse('invalid', parsed.error);
        const reply = await ticker.buy(parsed.value);
        if (!reply.ok) return refuse('unavailable', reply.error);
        // The new price reaches everyone (the asker too) through the conflated `update` broadcast.
        ack?.({ ok: true, stock: reply.stock });
      } else {
        const parsed = parseNoArgs(op, args);
        if (!parsed.ok) return refuse('invalid', parsed.error);
        const reply = op === 'start' ? await ticker.start() : await ticker.stop();
        if (!reply.ok) return refuse('unavailable', reply.error);
        // Everyone hears of a real change; a no-op (start while running) is news to the asker only.
        if (reply.changed) announceRun(reply.running);
        else tell(socket, 'status', runStatus(reply.running));
        ack?.({ ok: true, running: reply.running });
      }
      answered('ok');
    } catch (error) {
      logger.error({ err: error, socket: socket.id, event }, 'handler failed');
      refuse('internal', INTERNAL_ERROR);
    }
  }

  /** A late joiner gets current prices at once. During a broadcast the snapshot may be ahead of
   * updates queued for this socket, so it starts from the update going out instead. */
  function greet(socket: ForkcastSocket): void {
    broadcaster.assignShard(socket);
    const current = broadcaster.inFlight ?? ticker.snapshot();
    tell(socket, 'update', current);
    const recent = broadcaster.history();
    tell(socket, 'history', { updates: recent.length > 0 ? recent : [current] });
  }

  // One listener for every event, shared by every socket (called with it as `this`): listeners
  // per event and per connection cost memory.
  function onEvent(this: ForkcastSocket, event: unknown, ...raw: unknown[]): void {
    if (typeof event === 'string' && CLIENT_EVENTS.has(event))
      void handle(this, event, event as OpName, raw);
    else void handle(this, String(event).slice(0, 40), 'unknown', raw);
  }

  const onConnection = (socket: ForkcastSocket): void => {
    logger.debug({ socket: socket.id, recovered: socket.recovered }, 'client connected');
    tell(socket, 'status', status(STATUS.connected));
    // A recovered socket was just sent what it missed, in order: a snapshot would repeat one.
    if (!socket.recovered) greet(socket);
    socket.onAny(onEvent);
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
    ticker.off('status', onStatus);
  };
}

/** Compares a client-supplied token with the secret in constant time. */
function tokensMatch(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
