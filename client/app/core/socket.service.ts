import { DestroyRef, Injectable, InjectionToken, NgZone, inject } from '@angular/core';
import { Observable, distinctUntilChanged } from 'rxjs';
import { io, type Socket } from 'socket.io-client';

import {
  SOCKET_PATH,
  type AckError,
  type BuyAck,
  type ClientToServerEvents,
  type RunAck,
  type ServerToClientEvents,
} from '../../../protocol/events';
import type { StockName } from '../../../protocol/stocks';

export type ForkcastSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/**
 * How a `connect` went. `recovered`: the server restored this socket's session and has replayed
 * what it missed, so the prices on screen run on without a gap. `not-recovered`: a new session
 * (the drop was too long, or the server restarted): the server greets it as a new client,
 * and its snapshot and history seed the prices again.
 */
export type ConnectKind = 'first' | 'recovered' | 'not-recovered';

/** The payload each server event carries. */
export type ServerPayloads = {
  [E in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[E]>[0];
};

/**
 * Adds a listener for one server event and returns its removal. Written out per event because
 * socket.io-client's listener types cannot be satisfied for a generic event name; a mapped
 * type like this one can, and a new server event fails to compile until it is listed.
 */
type EventBinders = {
  [E in keyof ServerToClientEvents]: (listener: (payload: ServerPayloads[E]) => void) => () => void;
};

/** How long an operation waits for the server's acknowledgement. */
export const ACK_TIMEOUT_MS = 5000;

/** What a caller sees when no acknowledgement came back (timeout or a dropped connection). */
export const ACK_TIMEOUT_ERROR = 'server did not answer in time';

/**
 * Creates the socket. A token rather than a direct `io()` call so tests can hand in a real
 * Socket that never dials out (`autoConnect: false`).
 */
export const SOCKET_FACTORY = new InjectionToken<() => ForkcastSocket>('SOCKET_FACTORY', {
  providedIn: 'root',
  // Same origin as the page the server rendered. WebSocket first: one connection and no
  // long-polling handshake and upgrade for the server to pay for. Long-polling is only a
  // fallback where WebSockets are blocked, and only with tryAllTransports: without it the
  // client retries WebSocket forever.
  factory: () => () =>
    io({
      path: SOCKET_PATH,
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      auth: { token: takeControlToken() },
    }),
});

const TOKEN_KEY = 'forkcast.controlToken';

/**
 * A server started with CONTROL_TOKEN lets only holders of the token start, stop or buy. The
 * token is passed in the page's fragment (`/#token=…`), which never reaches a server log; it
 * is moved to sessionStorage and removed from the address bar, so it is not shared by copying
 * the URL, yet survives a reload of this tab.
 */
export function takeControlToken(): string | undefined {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/**
 * Socket.IO as observables and promises that play by Angular's zone rules, in the manner of
 * HttpClient's XHR backend: listeners are added on subscribe and removed on unsubscribe.
 */
@Injectable({ providedIn: 'root' })
export class SocketService {
  private readonly zone = inject(NgZone);

  /**
   * Created outside the Angular zone: the engine's heartbeat and reconnection timers and
   * every WebSocket frame would otherwise each be a zone task that runs change detection
   * for the whole app. Only values handed to subscribers re-enter the zone (`zone.run`).
   */
  private readonly socket: ForkcastSocket = this.zone.runOutsideAngular(inject(SOCKET_FACTORY));

  private readonly binders: EventBinders = {
    status: (listener) => {
      this.socket.on('status', listener);
      return () => this.socket.off('status', listener);
    },
    update: (listener) => {
      this.socket.on('update', listener);
      return () => this.socket.off('update', listener);
    },
    history: (listener) => {
      this.socket.on('history', listener);
      return () => this.socket.off('history', listener);
    },
  };

  readonly status$ = this.on('status');
  readonly update$ = this.on('update');
  readonly history$ = this.on('history');

  /** The connection as a user would describe it; starts with the current state. */
  readonly connection$: Observable<ConnectionState> = new Observable<ConnectionState>(
    (subscriber) => {
      const socket = this.socket;
      const manager = socket.io;
      const emit = (state: ConnectionState): void => this.zone.run(() => subscriber.next(state));
      // `active` is true while socket.io will keep retrying by itself; false after a
      // deliberate disconnect (ours or the server's), which it will not undo.
      const afterLoss = (): void => emit(socket.active ? 'reconnecting' : 'disconnected');
      const onConnect = (): void => emit('connected');
      const onReconnectAttempt = (): void => emit('reconnecting');
      // The transport is back; the namespace handshake (`connect`) is still to come.
      const onReconnect = (): void => emit(socket.connected ? 'connected' : 'connecting');
      const onReconnectFailed = (): void => emit('disconnected');

      socket.on('connect', onConnect);
      socket.on('disconnect', afterLoss);
      socket.on('connect_error', afterLoss);
      manager.on('reconnect_attempt', onReconnectAttempt);
      manager.on('reconnect', onReconnect);
      manager.on('reconnect_failed', onReconnectFailed);
      emit(this.currentState());

      return () => {
        socket.off('connect', onConnect);
        socket.off('disconnect', afterLoss);
        socket.off('connect_error', afterLoss);
        manager.off('reconnect_attempt', onReconnectAttempt);
        manager.off('reconnect', onReconnect);
        manager.off('reconnect_failed', onReconnectFailed);
      };
    },
  ).pipe(distinctUntilChanged());

  /**
   * One value per `connect` event, read from `socket.recovered`, which socket.io-client sets
   * just before it fires `connect` (and after it has delivered the replayed events).
   */
  readonly connects$: Observable<ConnectKind> = new Observable<ConnectKind>((subscriber) => {
    const socket = this.socket;
    // Counted per subscription, so nothing listens while nobody subscribes; one that arrives
    // while the socket is connected has missed the first connect. The app's subscribers come
    // with the page, before the socket has connected at all.
    let connectedBefore = socket.connected;
    const onConnect = (): void => {
      // A recovered session is never the first; `recovered` is undefined, not false, when the
      // server does not offer recovery, hence the truthiness test.
      const kind: ConnectKind = socket.recovered
        ? 'recovered'
        : connectedBefore
          ? 'not-recovered'
          : 'first';
      connectedBefore = true;
      this.zone.run(() => subscriber.next(kind));
    };
    socket.on('connect', onConnect);
    return () => {
      socket.off('connect', onConnect);
    };
  });

  constructor() {
    inject(DestroyRef).onDestroy(() => this.socket.disconnect());
  }

  /**
   * A cold stream of one server event. Each subscription adds its own listener and removes
   * exactly that listener on unsubscribe; values are delivered inside the Angular zone.
   */
  on<E extends keyof ServerToClientEvents>(event: E): Observable<ServerPayloads[E]> {
    return new Observable<ServerPayloads[E]>((subscriber) => {
      const remove = this.binders[event]((payload: ServerPayloads[E]) =>
        this.zone.run(() => subscriber.next(payload)),
      );
      return () => {
        remove();
      };
    });
  }

  start(): Promise<RunAck> {
    return this.request((socket) => socket.emitWithAck('start'));
  }

  stop(): Promise<RunAck> {
    return this.request((socket) => socket.emitWithAck('stop'));
  }

  buy(name: StockName): Promise<BuyAck> {
    return this.request((socket) => socket.emitWithAck('buy', name));
  }

  private currentState(): ConnectionState {
    if (this.socket.connected) return 'connected';
    return this.socket.active ? 'connecting' : 'disconnected';
  }

  /**
   * Sends an operation with a deadline. Never rejects: a timeout or a connection lost before
   * the answer becomes an `ok: false` result, so callers handle one shape. Resolves inside
   * the zone so whatever the caller updates is picked up by change detection.
   */
  private request<T extends object>(
    send: (socket: ForkcastSocket) => Promise<T>,
  ): Promise<T | AckError> {
    return new Promise((resolve) => {
      const settle = (result: T | AckError): void => this.zone.run(() => resolve(result));
      // Outside the zone, so the pending ack timer does not hold the app "unstable".
      this.zone.runOutsideAngular(() => {
        send(this.socket.timeout(ACK_TIMEOUT_MS)).then(settle, () =>
          settle({ ok: false, error: ACK_TIMEOUT_ERROR }),
        );
      });
    });
  }
}
