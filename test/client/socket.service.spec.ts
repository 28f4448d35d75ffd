import { NgZone } from '@angular/core';
import { TestBed, fakeAsync, flushMicrotasks, tick } from '@angular/core/testing';
import { io, Socket } from 'socket.io-client';

import {
  ACK_TIMEOUT_ERROR,
  ACK_TIMEOUT_MS,
  SOCKET_FACTORY,
  SocketService,
  type ConnectKind,
  type ConnectionState,
  type ForkcastSocket,
} from '../../client/app/core/socket.service';
import type { BuyAck, RunAck, UpdatePayload } from '../../protocol/events';

/**
 * Delivers an event to a socket's listeners exactly as socket.io-client does once it has
 * decoded a packet (its Socket and Manager dispatch through the plain Emitter). The Socket
 * class overrides `emit` to mean "send to the server", hence the base-class method.
 */
const dispatch = (
  Object.getPrototypeOf(Socket.prototype) as {
    emit: (this: object, event: string, ...args: unknown[]) => unknown;
  }
).emit;

function receive(target: object, event: string, ...args: unknown[]): void {
  dispatch.call(target, event, ...args);
}

const UPDATE: UpdatePayload = {
  stocks: [
    { name: 'Apple', price: 14.5 },
    { name: 'Microsoft', price: 43 },
    { name: 'Facebook', price: 37.75 },
  ],
  running: true,
  seq: 7,
  ts: 1_700_000_000_000,
};

/** socket.io-parser's packet types, as socket.io-client reads them off the wire. */
const CONNECT = 0;
const EVENT = 2;

/** The Socket's own entry points for what the Manager decoded or lost. */
interface SocketInternals {
  onpacket(packet: { type: number; nsp: string; data: unknown }): void;
  onclose(reason: string): void;
}

/**
 * Feeds the socket what a server sends. Through socket.io-client's own packet handling, so it
 * decides `recovered` (the CONNECT's `pid` equals the last one) and buffers events that come
 * before the CONNECT, as the missed ones a recovering server replays do.
 */
function wire(socket: ForkcastSocket) {
  const internals = socket as unknown as SocketInternals;
  // Nothing is dialled, so what the socket writes back (its disconnect at teardown) goes nowhere.
  socket.io._packet = () => undefined;
  return {
    /** The CONNECT packet: a session id and, when the server offers recovery, a private id. */
    connect: (sid: string, pid?: string) =>
      internals.onpacket({ type: CONNECT, nsp: '/', data: { sid, pid } }),
    event: (...data: unknown[]) => internals.onpacket({ type: EVENT, nsp: '/', data }),
    drop: () => internals.onclose('transport close'),
  };
}

interface Setup {
  service: SocketService;
  socket: ForkcastSocket;
  zone: NgZone;
  /** Whether the factory ran inside the Angular zone; undefined if it never ran. */
  createdInZone: boolean | undefined;
}

/**
 * A real socket.io-client Socket that never dials out. `forceNew` gives each test its own
 * Manager instead of io()'s shared per-URL cache, so listeners cannot leak between tests.
 */
function setup(): Setup {
  const socket: ForkcastSocket = io({ autoConnect: false, forceNew: true });
  let createdInZone: boolean | undefined;
  TestBed.configureTestingModule({
    providers: [
      {
        provide: SOCKET_FACTORY,
        useValue: () => {
          createdInZone = NgZone.isInAngularZone();
          return socket;
        },
      },
    ],
  });
  const zone = TestBed.inject(NgZone);
  // Ask for the service from inside the zone, as a component would, so that the assertion
  // on where the socket was created can fail.
  const service = zone.run(() => TestBed.inject(SocketService));
  return { service, socket, zone, createdInZone };
}

/**
 * Marks the socket connected and captures what it writes. `_packet` is the Manager's hand-off
 * to the engine (the wire); replacing it is the one stub, so everything above it (ack ids,
 * timers, buffering, disconnect handling) is socket.io-client's own code.
 */
function connect(socket: ForkcastSocket): unknown[] {
  const written: unknown[] = [];
  socket.io._packet = (packet) => {
    written.push(packet);
  };
  socket.connected = true;
  receive(socket, 'connect');
  return written;
}

describe('SocketService', () => {
  it('creates the socket outside the Angular zone', () => {
    const { createdInZone } = setup();
    expect(createdInZone).toBe(false);
  });

  it('adds one listener per subscription and removes exactly that one on unsubscribe', () => {
    const { service, socket } = setup();
    expect(socket.listeners('update')).toHaveLength(0);

    const first = service.update$.subscribe();
    expect(socket.listeners('update')).toHaveLength(1);
    const second = service.update$.subscribe();
    expect(socket.listeners('update')).toHaveLength(2);

    first.unsubscribe();
    expect(socket.listeners('update')).toHaveLength(1);
    second.unsubscribe();
    expect(socket.listeners('update')).toHaveLength(0);
  });

  it('delivers server events inside the zone even when they arrive outside it', () => {
    const { service, socket, zone } = setup();
    const seen: { update: UpdatePayload; inZone: boolean }[] = [];
    const subscription = service.update$.subscribe((update) =>
      seen.push({ update, inZone: NgZone.isInAngularZone() }),
    );

    zone.runOutsideAngular(() => {
      expect(NgZone.isInAngularZone()).toBe(false);
      receive(socket, 'update', UPDATE);
    });

    expect(seen).toEqual([{ update: UPDATE, inZone: true }]);
    subscription.unsubscribe();
  });

  it('delivers status messages', () => {
    const { service, socket } = setup();
    const messages: string[] = [];
    const subscription = service.status$.subscribe((status) => messages.push(status.message));

    receive(socket, 'status', { message: 'EHLO OK Connected', running: false });

    expect(messages).toEqual(['EHLO OK Connected']);
    subscription.unsubscribe();
    expect(socket.listeners('status')).toHaveLength(0);
  });

  it('reports the connection state, starting with the current one', () => {
    const { service, socket, zone } = setup();
    const states: { state: ConnectionState; inZone: boolean }[] = [];
    const subscription = service.connection$.subscribe((state) =>
      states.push({ state, inZone: NgZone.isInAngularZone() }),
    );

    zone.runOutsideAngular(() => {
      connect(socket);
      // A socket that was opened is "active" (socket.io-client will retry after a transport
      // loss); this one was never opened, because opening dials out.
      jest.spyOn(socket, 'active', 'get').mockReturnValue(true);
      socket.connected = false;
      receive(socket, 'disconnect', 'transport close');
      receive(socket.io, 'reconnect_attempt', 1);
      receive(socket.io, 'reconnect_failed');
    });

    expect(states).toEqual([
      { state: 'disconnected', inZone: true },
      { state: 'connected', inZone: true },
      { state: 'reconnecting', inZone: true },
      { state: 'disconnected', inZone: true },
    ]);

    subscription.unsubscribe();
    expect(socket.listeners('connect')).toHaveLength(0);
    expect(socket.listeners('disconnect')).toHaveLength(0);
    expect(socket.io.listeners('reconnect_attempt')).toHaveLength(0);
  });

  it('reports each connect: the first, then whether the server recovered the session', () => {
    const { service, socket, zone } = setup();
    const server = wire(socket);
    const seen: { kind: ConnectKind; inZone: boolean }[] = [];
    const subscription = service.connects$.subscribe((kind) =>
      seen.push({ kind, inZone: NgZone.isInAngularZone() }),
    );

    zone.runOutsideAngular(() => {
      server.connect('a', 'session-1');
      server.drop();
      server.connect('a', 'session-1');
      server.drop();
      // Too long away, or a restarted server: a new session.
      server.connect('b', 'session-2');
    });

    expect(seen).toEqual([
      { kind: 'first', inZone: true },
      { kind: 'recovered', inZone: true },
      { kind: 'not-recovered', inZone: true },
    ]);
    subscription.unsubscribe();
    expect(socket.listeners('connect')).toHaveLength(0);
  });

  it('reports a reconnect to a server without recovery as not recovered', () => {
    const { service, socket } = setup();
    const server = wire(socket);
    const kinds: ConnectKind[] = [];
    const subscription = service.connects$.subscribe((kind) => kinds.push(kind));

    server.connect('a');
    server.drop();
    server.connect('b');

    expect(kinds).toEqual(['first', 'not-recovered']);
    subscription.unsubscribe();
  });

  it('counts a subscriber that arrives while connected as having missed the first', () => {
    const { service, socket } = setup();
    const server = wire(socket);
    server.connect('a', 'session-1');

    const kinds: ConnectKind[] = [];
    const subscription = service.connects$.subscribe((kind) => kinds.push(kind));
    server.drop();
    server.connect('b', 'session-2');

    expect(kinds).toEqual(['not-recovered']);
    subscription.unsubscribe();
  });

  it('delivers the replayed events before it reports the recovered connect', () => {
    const { service, socket } = setup();
    const server = wire(socket);
    const seen: (number | ConnectKind)[] = [];
    const subscriptions = [
      service.update$.subscribe((update) => seen.push(update.seq)),
      service.connects$.subscribe((kind) => seen.push(kind)),
    ];
    server.connect('a', 'session-1');
    server.drop();

    // Missed broadcasts come first, each with its offset, and wait for the CONNECT.
    server.event('update', { ...UPDATE, seq: 8 }, 'offset-8');
    server.event('update', { ...UPDATE, seq: 9 }, 'offset-9');
    expect(seen).toEqual(['first']);
    server.connect('a', 'session-1');

    expect(seen).toEqual(['first', 8, 9, 'recovered']);
    subscriptions.forEach((subscription) => subscription.unsubscribe());
  });

  it('resolves buy() with the server acknowledgement', async () => {
    const { service, socket } = setup();
    const ack: BuyAck = { ok: true, stock: { name: 'Apple', price: 15.95 } };
    const timeout = jest.spyOn(socket, 'timeout');
    // The only stand-in for the server: with no server there is nobody to acknowledge.
    const emitWithAck = jest.spyOn(socket, 'emitWithAck').mockResolvedValue(ack);

    await expect(service.buy('Apple')).resolves.toEqual(ack);
    expect(timeout).toHaveBeenCalledWith(ACK_TIMEOUT_MS);
    expect(emitWithAck).toHaveBeenCalledWith('buy', 'Apple');
  });

  it('sends start and stop and passes their acknowledgements through', async () => {
    const { service, socket } = setup();
    const emitWithAck = jest
      .spyOn(socket, 'emitWithAck')
      .mockResolvedValueOnce({ ok: true, running: true } satisfies RunAck)
      .mockResolvedValueOnce({ ok: false, error: 'ticker unavailable' } satisfies RunAck);

    await expect(service.start()).resolves.toEqual({ ok: true, running: true });
    await expect(service.stop()).resolves.toEqual({ ok: false, error: 'ticker unavailable' });
    expect(emitWithAck.mock.calls).toEqual([['start'], ['stop']]);
  });

  it('turns a missing acknowledgement into ok: false after the deadline', fakeAsync(() => {
    const { service, socket } = setup();
    let result: BuyAck | undefined;
    void service.buy('Apple').then((ack) => (result = ack));
    // Not connected, so socket.io-client holds the packet until it connects.
    expect(socket.sendBuffer).toHaveLength(1);

    tick(ACK_TIMEOUT_MS - 1);
    flushMicrotasks();
    expect(result).toBeUndefined();

    tick(1);
    flushMicrotasks();
    expect(result).toEqual({ ok: false, error: ACK_TIMEOUT_ERROR });
    // ...and drops it on timeout, so a later reconnect cannot replay a buy we reported failed.
    expect(socket.sendBuffer).toHaveLength(0);
  }));

  it('turns a connection lost before the answer into ok: false', async () => {
    const { service, socket } = setup();
    const written = connect(socket);

    const pending = service.start();
    expect(written).toEqual([expect.objectContaining({ data: ['start'], nsp: '/' })]);
    socket.disconnect();

    await expect(pending).resolves.toEqual({ ok: false, error: ACK_TIMEOUT_ERROR });
  });

  it('resolves acknowledgements inside the zone, so change detection sees them', async () => {
    const { service, socket, zone } = setup();
    jest.spyOn(socket, 'emitWithAck').mockResolvedValue({ ok: true, running: true });
    // Zone-based change detection runs when the Angular zone empties its microtask queue;
    // nothing else enters the zone here, so this counts the service's own re-entry.
    let checks = 0;
    const subscription = zone.onMicrotaskEmpty.subscribe(() => checks++);

    await zone.runOutsideAngular(() => service.start());

    expect(checks).toBeGreaterThan(0);
    subscription.unsubscribe();
  });

  it('disconnects the socket when the app is destroyed', () => {
    const { socket } = setup();
    const disconnect = jest.spyOn(socket, 'disconnect');

    TestBed.resetTestingModule();

    expect(disconnect).toHaveBeenCalledTimes(1);
  });
});
