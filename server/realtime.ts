/** Socket events to ticker ops (with acks), ticker output to broadcasts; input validated first. */
import { createHash, timingSafeEqual } from 'node:crypto';

import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';

import { STATUS, type BuyAck, type RunAck, type StatusPayload } from '../protocol/events';
import type { StockName } from '../protocol/stocks';
import { parseBuyArgs, parseNoArgs } from '../protocol/validation';
import { UpdateBroadcaster, type Outgoing } from './broadcaster';
import type { HttpOptions } from './http';
import type { ForkcastIo, ForkcastSocket } from './io';
import type { OpName, RejectReason, Transport } from './metrics';
import type { TickerHost } from './ticker-host';

const WATCH_ONLY_ERROR =
  'this server needs a control token to start, stop or buy (Socket.IO: handshake auth.token; HTTP: Authorization: Bearer); you may watch';
/** Hashed, so that comparing in constant time needs no equal lengths (nor leaks the length). */
const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

export interface RealtimeOptions extends Pick<HttpOptions, 'logger' | 'metrics'> {
  /** start / stop / buy per connection per second (default 50); more are refused, not queued. */
  opsPerSecond?: number;
  /** When set, only clients presenting it (handshake `auth.token`) may start, stop or buy. */
  controlToken?: string | undefined;
  /** A connection taking no data for 1–2 × this (default 10 s) is cut off: it would fill memory. */
  stallMs?: number;
  also?: (outgoing: Outgoing) => void;
}

/** Who asks: transport, rate-limit key (socket or address), token, where a no-op is news. */
export interface Caller {
  transport: Transport;
  key: string;
  token: unknown;
  notice?: (status: StatusPayload) => void;
}
/** An op's answer; a refusal says why, for the metrics and the HTTP status. */
export type Outcome =
  | { ok: true; ack: RunAck | BuyAck }
  | { ok: false; reason: RejectReason; error: string; retryMs?: number | undefined };

/** Wires `io` to `ticker`; `perform` takes ops from other transports; `detach` unwires (shutdown). */
export function attachRealtime(io: ForkcastIo, ticker: TickerHost, options: RealtimeOptions) {
  const { logger, opsPerSecond = 50, controlToken, metrics, also, stallMs = 10_000 } = options;
  // One bucket per socket or address: a flooding client is refused without slowing anyone else.
  const limiter = new RateLimiterMemory({ points: opsPerSecond, duration: 1 });
  const rateError = `too many requests: at most ${opsPerSecond} start/stop/buy per second per connection (HTTP: per address)`;
  // Ten times that in events of any kind is a flood: cut off before its unread replies fill memory.
  const flood = new RateLimiterMemory({ points: 10 * opsPerSecond, duration: 1 });
  const token = controlToken === undefined ? undefined : digest(controlToken);
  const mayControl = (given: unknown): boolean =>
    !token || (typeof given === 'string' && timingSafeEqual(digest(given), token));
  const status = (message: string, running = ticker.snapshot().running) => ({ message, running });
  const onDelivered = ({ seq }: { seq: number }, deliveries: number): void => {
    metrics.broadcast(deliveries);
    ticker.delivered(seq);
  };
  const broadcaster = new UpdateBroadcaster(io, onDelivered, also);
  const toEveryone = ticker.broadcastStatus?.bind(ticker) ?? broadcaster.publishStatus;
  const listeners = {
    update: broadcaster.publish,
    status: broadcaster.publishStatus,
    opening: broadcaster.publishOpening,
    lost: () => toEveryone(status(STATUS.tickerLost)),
    back: () => toEveryone(status(STATUS.tickerBack)),
  };
  for (const [event, listener] of Object.entries(listeners))
    ticker.on(event as keyof typeof listeners, listener);

  /** Writes straight to the Engine.IO connection broadcasts use: order holds and, unlike via the
   * adapter, nothing is stored for recovery. `volatile` would drop it right after a handshake. */
  const tell = (socket: ForkcastSocket, ...packet: Parameters<ForkcastSocket['emit']>) =>
    // Socket.IO's encoding of an event on the main namespace without ack or binary.
    socket.connected && socket.conn.write(`2${JSON.stringify(packet)}`);

  const runStatus = (on: boolean) => status(on ? STATUS.started : STATUS.stopped, on);
  /** A real start or stop is announced at once, then every 250 ms at most, the last trailing (a
   * client toggling cannot flood all); via the broadcaster: no "Stopped" overtakes an update. */
  let interval: NodeJS.Timeout | undefined;
  let trailing: boolean | undefined;
  function announceRun(running: boolean): void {
    if (interval) return void (trailing = running);
    toEveryone(runStatus(running));
    interval = setTimeout(() => {
      const last = trailing;
      interval = trailing = undefined;
      if (last !== undefined) announceRun(last);
    }, 250);
  }

  /** One op from any transport to its ack or its refusal: token, rate limit, validation, ticker.
   * `invalid`: what the transport's own parsing refused (an HTTP body), refused in its turn. */
  async function perform(caller: Caller, event: string, args: unknown[], invalid?: string) {
    broadcaster.opArrived();
    const at = performance.now();
    const op: OpName = ['start', 'stop', 'buy'].includes(event) ? (event as OpName) : 'unknown';
    const answer = (outcome: Outcome) => {
      const result = outcome.ok ? 'ok' : outcome.reason;
      metrics.answered(op, result, caller.transport, (performance.now() - at) / 1_000);
      if (!outcome.ok) logger.debug({ caller: caller.key, event, outcome }, 'refused an op');
      return outcome;
    };
    const refuse = (reason: RejectReason, error: string, retryMs?: number) =>
      answer({ ok: false, reason, error, retryMs });
    try {
      if (op === 'unknown') return refuse('invalid', `unknown event "${event}"`);
      if (!mayControl(caller.token)) return refuse('forbidden', WATCH_ONLY_ERROR);
      const limited = await limiter.consume(`${caller.transport}:${caller.key}`).then(
        () => null,
        (res: RateLimiterRes) => res,
      );
      if (limited) return refuse('rate_limited', rateError, limited.msBeforeNext);
      if (invalid !== undefined) return refuse('invalid', invalid);
      const parsed = op === 'buy' ? parseBuyArgs(args) : parseNoArgs(op, args);
      if (!parsed.ok) return refuse('invalid', parsed.error);
      const reply = op === 'buy' ? await ticker.buy(parsed.value as StockName) : await ticker[op]();
      if (!reply.ok) return refuse('unavailable', reply.error);
      // The new price reaches everyone (the asker too) through the conflated `update` broadcast.
      if ('stock' in reply) return answer({ ok: true, ack: { ok: true, stock: reply.stock } });
      if (reply.changed) announceRun(reply.running);
      else caller.notice?.(runStatus(reply.running));
      return answer({ ok: true, ack: { ok: true, running: reply.running } });
    } catch (error) {
      logger.error({ err: error, caller: caller.key, event }, 'handler failed');
      return refuse('internal', 'internal error; the operation may not have been applied');
    }
  }

  // One listener for every event and socket (as `this`): per-socket closures would cost memory.
  function onEvent(this: ForkcastSocket, name: unknown, ...raw: unknown[]): void {
    void flood.consume(this.id).catch(() => this.disconnect(true));
    const event = String(name).slice(0, 40);
    const ack =
      typeof raw.at(-1) === 'function' ? (raw.pop() as (r: RunAck | BuyAck) => void) : undefined;
    const token: unknown = this.handshake.auth['token'];
    const notice = (payload: StatusPayload) => tell(this, 'status', payload);
    const caller = { transport: 'socket' as const, key: this.id, token, notice };
    void perform(caller, event, raw).then((outcome) => {
      if (ack) ack(outcome.ok ? outcome.ack : { ok: false, error: outcome.error });
      else if (!outcome.ok) notice(status(`${event} rejected: ${outcome.error}`));
    });
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

  // Unwritable at two sweeps, no `ready` between: not reading ("forced close" is recoverable).
  const stalled = new WeakSet<object>();
  const sweep = setInterval(() => {
    for (const socket of io.of('/').sockets.values()) {
      const { transport } = socket.conn;
      if (transport.writable) continue;
      if (stalled.has(transport)) socket.conn.close(true);
      else stalled.add(transport.once('ready', () => stalled.delete(transport)));
    }
  }, stallMs).unref();

  const detach = () => {
    broadcaster.stop();
    clearTimeout(interval);
    clearInterval(sweep);
    io.off('connection', onConnection);
    for (const [event, listener] of Object.entries(listeners))
      ticker.off(event as keyof typeof listeners, listener);
  };
  return { detach, perform };
}
