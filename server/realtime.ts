/** Socket events to ticker ops (with acks), ticker output to broadcasts; input validated first. */
import { createHash, timingSafeEqual } from 'node:crypto';

import { RateLimiterMemory } from 'rate-limiter-flexible';

import { STATUS, type BuyAck, type RunAck, type StatusPayload } from '../protocol/events';
import { parseBuyArgs, parseNoArgs } from '../protocol/validation';
import { UpdateBroadcaster } from './broadcaster';
import type { ForkcastIo, ForkcastSocket } from './io';
import type { Logger } from './logger';
import type { ForkcastMetrics, OpName, RejectReason } from './metrics';
import type { TickerHost } from './ticker-host';

const WATCH_ONLY_ERROR =
  'this server needs a control token to start, stop or buy (handshake auth.token); you may watch';
/** Run statuses go to everyone at most this often: one client toggling cannot flood them all. */
const RUN_STATUS_MIN_INTERVAL_MS = 250;
/** Hashed, so that comparing in constant time needs no equal lengths (nor leaks the length). */
const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

export interface RealtimeOptions {
  logger: Logger;
  /** start / stop / buy per connection per second (default 50); more are refused, not queued. */
  opsPerSecond?: number;
  /** When set, only clients presenting it (handshake `auth.token`) may start, stop or buy. */
  controlToken?: string | undefined;
  metrics: ForkcastMetrics;
}

/** Wires `io` to `ticker`. Returns a function that unwires it (used on shutdown). */
export function attachRealtime(
  io: ForkcastIo,
  ticker: TickerHost,
  { logger, opsPerSecond = 50, controlToken, metrics }: RealtimeOptions,
): () => void {
  // One bucket per socket: a flooding client is refused without slowing anyone else.
  const limiter = new RateLimiterMemory({ points: opsPerSecond, duration: 1 });
  const rateError = `too many requests: at most ${opsPerSecond} start/stop/buy per second per connection`;
  const token = controlToken === undefined ? undefined : digest(controlToken);
  const mayControl = (given: unknown): boolean =>
    !token || (typeof given === 'string' && timingSafeEqual(digest(given), token));
  const status = (message: string, running = ticker.snapshot().running) => ({ message, running });
  const broadcaster = new UpdateBroadcaster(io, (update, deliveries) => {
    metrics.broadcast(deliveries);
    ticker.delivered(update.seq);
  });
  /** On one node everyone is this node's sockets; a cluster's host carries statuses itself. */
  const toEveryone = (payload: StatusPayload): void =>
    ticker.broadcastStatus ? ticker.broadcastStatus(payload) : broadcaster.publishStatus(payload);
  const listeners = {
    update: broadcaster.publish,
    status: broadcaster.publishStatus,
    opening: broadcaster.publishOpening,
    lost: () => toEveryone(status(STATUS.tickerLost)),
    back: () => toEveryone(status(STATUS.tickerBack)),
  };
  for (const [event, listener] of Object.entries(listeners))
    ticker.on(event as keyof typeof listeners, listener);
  metrics.readClientsFrom(() => io.sockets.sockets.size);

  /** Writes straight to the Engine.IO connection broadcasts use: order holds and, unlike via the
   * adapter, nothing is stored for recovery. `volatile` would drop it right after a handshake. */
  function tell(socket: ForkcastSocket, ...packet: Parameters<ForkcastSocket['emit']>): void {
    // Socket.IO's encoding of an event on the main namespace without ack or binary.
    if (socket.connected) socket.conn.write(`2${JSON.stringify(packet)}`);
  }

  /** A real start or stop is announced at once, or in one trailing status if the last was too
   * recent; through the broadcaster, so nobody hears "Stopped" before an older running update. */
  let [lastRunStatusAt, lastRunning] = [Number.NEGATIVE_INFINITY, false];
  let trailing: NodeJS.Timeout | undefined;
  const runStatus = (running: boolean): StatusPayload =>
    status(running ? STATUS.started : STATUS.stopped, running);
  function announceRun(running: boolean): void {
    lastRunning = running;
    const wait = lastRunStatusAt + RUN_STATUS_MIN_INTERVAL_MS - performance.now();
    if (wait > 0) trailing ??= setTimeout(sendRunStatus, wait);
    else if (!trailing) sendRunStatus();
  }
  function sendRunStatus(): void {
    [trailing, lastRunStatusAt] = [undefined, performance.now()];
    toEveryone(runStatus(lastRunning));
  }

  /** One op to its ack, or its refusal (as a status to the sender if it passed no ack). */
  async function handle(socket: ForkcastSocket, event: string, raw: unknown[]): Promise<void> {
    const at = performance.now();
    const op: OpName = ['start', 'stop', 'buy'].includes(event) ? (event as OpName) : 'unknown';
    const ack =
      typeof raw.at(-1) === 'function' ? (raw.pop() as (r: RunAck | BuyAck) => void) : undefined;
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
      if (!mayControl(socket.handshake.auth['token'])) return refuse('forbidden', WATCH_ONLY_ERROR);
      if (!(await limiter.consume(socket.id).catch(() => null)))
        return refuse('rate_limited', rateError);
      if (op === 'buy') {
        const parsed = parseBuyArgs(raw);
        if (!parsed.ok) return refuse('invalid', parsed.error);
        const reply = await ticker.buy(parsed.value);
        if (!reply.ok) return refuse('unavailable', reply.error);
        // The new price reaches everyone (the asker too) through the conflated `update` broadcast.
        ack?.({ ok: true, stock: reply.stock });
      } else {
        const parsed = parseNoArgs(op, raw);
        if (!parsed.ok) return refuse('invalid', parsed.error);
        const reply = await ticker[op]();
        if (!reply.ok) return refuse('unavailable', reply.error);
        // Everyone hears of a real change; a no-op (start while running) is news to the asker only.
        if (reply.changed) announceRun(reply.running);
        else tell(socket, 'status', runStatus(reply.running));
        ack?.({ ok: true, running: reply.running });
      }
      answered('ok');
    } catch (error) {
      logger.error({ err: error, socket: socket.id, event }, 'handler failed');
      refuse('internal', 'internal error; the operation may not have been applied');
    }
  }

  // One listener for every event, shared by every socket (called with it as `this`): listeners
  // per event and per connection cost memory.
  function onEvent(this: ForkcastSocket, event: unknown, ...raw: unknown[]): void {
    broadcaster.opArrived();
    void handle(this, String(event).slice(0, 40), raw);
  }

  const onConnection = (socket: ForkcastSocket): void => {
    tell(socket, 'status', status(STATUS.connected));
    // A recovered socket was just sent what it missed, in order: a greeting would repeat one.
    if (!socket.recovered) {
      const greeting = ticker.greeting();
      const { update, history } = broadcaster.admit(socket, ticker.snapshot(), greeting.history);
      tell(socket, 'update', update);
      tell(socket, 'history', { updates: history });
      tell(socket, 'opening', greeting.opening);
    }
    socket.onAny(onEvent);
  };
  io.on('connection', onConnection);

  return () => {
    broadcaster.stop();
    clearTimeout(trailing);
    io.off('connection', onConnection);
    for (const [event, listener] of Object.entries(listeners))
      ticker.off(event as keyof typeof listeners, listener);
  };
}
