import { DestroyRef, Injectable, InjectionToken, NgZone, inject } from '@angular/core';
import { Observable, defer, distinctUntilChanged, map, merge, startWith } from 'rxjs';
import { io, type Socket } from 'socket.io-client';

import {
  SOCKET_PATH,
  type AckError,
  type ClientToServerEvents,
  type ServerToClientEvents,
} from '../../../protocol/events';
import type { StockName } from '../../../protocol/stocks';

export type ForkcastSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The connection in a user's words, for the header and the live region. After the first connect,
 * `recovered`: the server replayed what was missed; `not-recovered`: a new session, greeted anew. */
export const CONNECTION_LABELS = {
  connecting: 'Connecting…',
  connected: 'Connected',
  recovered: 'Reconnected — nothing missed',
  'not-recovered': 'Reconnected — prices refreshed',
  reconnecting: 'Connection lost, reconnecting…',
  unreachable: 'Cannot reach the server — retrying',
  disconnected: 'Disconnected from the server',
} as const;
export type ConnectionState = keyof typeof CONNECTION_LABELS;

export const ACK_TIMEOUT_MS = 5000;
/** What a caller sees when no acknowledgement came back (timeout or a dropped connection). */
export const ACK_TIMEOUT_ERROR = 'server did not answer in time';

/** Creates the socket; a token so tests can hand in a Socket that never dials out. */
export const SOCKET_FACTORY = new InjectionToken<() => ForkcastSocket>('SOCKET_FACTORY', {
  providedIn: 'root',
  // WebSocket first spares the server a polling handshake and upgrade; polling is a fallback
  // where WebSockets are blocked, which needs tryAllTransports (else it retries WebSocket).
  factory: () => () =>
    io({
      path: SOCKET_PATH,
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      auth: { token: takeControlToken() },
    }),
});

const TOKEN_KEY = 'forkcast.controlToken';

/** The CONTROL_TOKEN comes in the fragment (`/#token=…`), which no server logs; it moves to
 * sessionStorage, so copying the URL does not share it but a reload keeps it. */
export function takeControlToken(): string | undefined {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** True when the server needs a control token (its shell says so) and this tab has none. */
export const WATCH_ONLY = new InjectionToken<boolean>('WATCH_ONLY', {
  providedIn: 'root',
  factory: () => !!document.querySelector('meta[name="forkcast-control"]') && !takeControlToken(),
});

/** socket.io-client types `on` / `off` per event name, which a shared helper cannot name. */
type Emitter = Record<'on' | 'off', (event: string, listener: (payload: never) => void) => void>;
/** What a server event carries; nothing of use for the connection's own events. */
type Payload<E> = Parameters<ServerToClientEvents[E & keyof ServerToClientEvents]>[0];

/** Socket.IO as zone-aware observables and promises. The socket lives outside the zone, or every
 * heartbeat, timer and frame would run change detection; values re-enter it when delivered. */
@Injectable({ providedIn: 'root' })
export class SocketService {
  private readonly zone = inject(NgZone);
  private readonly socket: ForkcastSocket = this.zone.runOutsideAngular(inject(SOCKET_FACTORY));

  readonly status$ = this.listen(this.socket, 'status');
  readonly update$ = this.listen(this.socket, 'update');
  readonly history$ = this.listen(this.socket, 'history');
  readonly opening$ = this.listen(this.socket, 'opening');

  /** Connects so far, counted before subscribers hear of one: a late one, too, sees reconnects. */
  private connects = 0;
  private readonly counted = () => this.connects++;

  /** Per subscription, starting with the state now. */
  readonly connection$: Observable<ConnectionState> = defer(() => {
    const { socket } = this;
    // socket.io-client sets `recovered` just before `connect`, after the replayed events.
    const connected = (): ConnectionState =>
      socket.recovered ? 'recovered' : this.connects > 1 ? 'not-recovered' : 'connected';
    // `active` is false after a deliberate disconnect or a refusal, which socket.io won't retry
    // (it retries a lost connection forever: there is no `reconnect_failed`).
    const lost = (): ConnectionState =>
      !socket.active ? 'disconnected' : this.connects > 0 ? 'reconnecting' : 'unreachable';
    return merge(
      this.listen(socket, 'connect').pipe(map(connected)),
      this.listen(socket, 'disconnect', 'connect_error').pipe(map(lost)),
      this.listen(socket.io, 'reconnect_attempt').pipe(map(lost)),
      // The transport is back; the namespace handshake (`connect`) is still to come.
      this.listen(socket.io, 'reconnect').pipe(map(() => 'connecting' as const)),
    ).pipe(
      startWith<ConnectionState>(
        socket.connected ? 'connected' : socket.active && !this.connects ? 'connecting' : lost(),
      ),
      distinctUntilChanged(),
    );
  });

  constructor() {
    this.socket.on('connect', this.counted);
    inject(DestroyRef).onDestroy(() => this.socket.off('connect', this.counted).disconnect());
  }

  start = () => this.request((socket) => socket.emitWithAck('start'));
  stop = () => this.request((socket) => socket.emitWithAck('stop'));
  buy = (name: StockName) => this.request((socket) => socket.emitWithAck('buy', name));

  /** One listener per subscription, removed on unsubscribe, handing values on in the zone. */
  private listen<E extends string>(target: object, ...events: E[]): Observable<Payload<E>> {
    const emitter = target as Emitter;
    return new Observable((subscriber) => {
      const listener = (payload: Payload<E>): void => this.zone.run(() => subscriber.next(payload));
      events.forEach((event) => emitter.on(event, listener));
      return () => events.forEach((event) => emitter.off(event, listener));
    });
  }

  /** Never rejects: a timeout or lost connection becomes `ok: false`, so callers handle one
   * shape. Sent outside the zone, so the pending ack timer does not hold the app "unstable". */
  private request<T extends object>(send: (socket: ForkcastSocket) => Promise<T>) {
    return this.zone
      .runOutsideAngular(() => send(this.socket.timeout(ACK_TIMEOUT_MS)))
      .catch((): AckError => ({ ok: false, error: ACK_TIMEOUT_ERROR }))
      .then((ack) => this.zone.run(() => ack));
  }
}
