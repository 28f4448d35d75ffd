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

/** `recovered`: the server restored the session and replayed what it missed. `not-recovered`: a
 * new session (drop too long, server restarted), greeted like a new client. */
export type ConnectKind = 'first' | 'recovered' | 'not-recovered';

export type ServerPayloads = {
  [E in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[E]>[0];
};

/** Adds a listener for one event and returns its removal. Per event because socket.io-client's
 * listener types reject a generic event name; a new server event fails to compile until listed. */
type EventBinders = {
  [E in keyof ServerToClientEvents]: (listener: (payload: ServerPayloads[E]) => void) => () => void;
};

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

/** Socket.IO as zone-aware observables and promises; listeners are added on subscribe and
 * removed on unsubscribe. */
@Injectable({ providedIn: 'root' })
export class SocketService {
  private readonly zone = inject(NgZone);

  /** Outside the zone, or every heartbeat, timer and frame would run change detection; only
   * values handed to subscribers re-enter it. */
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
      // `active` is false after a deliberate disconnect, which socket.io will not retry.
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

  /** One value per `connect`, from `socket.recovered`, which socket.io-client sets just before
   * firing `connect` (after the replayed events). */
  readonly connects$: Observable<ConnectKind> = new Observable<ConnectKind>((subscriber) => {
    const socket = this.socket;
    // Per subscription; one made while connected has missed the first connect.
    let connectedBefore = socket.connected;
    const onConnect = (): void => {
      // `recovered` is undefined, not false, when the server offers no recovery.
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

  /** A cold stream of one server event, one listener per subscription, delivered in the zone. */
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

  /** Sends an op with a deadline. Never rejects: a timeout or lost connection becomes `ok: false`,
   * so callers handle one shape. Resolves in the zone, for change detection. */
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
