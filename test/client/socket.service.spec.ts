import { NgZone } from '@angular/core';
import { TestBed, fakeAsync, flushMicrotasks, tick } from '@angular/core/testing';
import type { Observable } from 'rxjs';
import { io, Socket } from 'socket.io-client';

import {
  ACK_TIMEOUT_ERROR,
  ACK_TIMEOUT_MS,
  SOCKET_FACTORY,
  SocketService,
  takeControlToken,
  type ConnectionState,
  type ForkcastSocket,
} from '../../client/app/core/socket.service';
import type { BuyAck, RunAck } from '../../protocol/events';
import { UPDATE } from './fake-socket.service';

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

/** socket.io-parser's packet types, as socket.io-client reads them off the wire. */
const CONNECT = 0;
const EVENT = 2;

/** The Socket's own entry points for what the Manager decoded or lost. */
interface SocketInternals {
  onpacket(packet: { type: number; nsp: string; data: unknown }): void;
  onclose(reason: string): void;
}

/**
 * A real socket.io-client Socket that never dials out (`forceNew`: its own Manager, so no
 * listener leaks between tests), and a stand-in server that feeds it packets through
 * socket.io-client's own handling: it decides `recovered` (the CONNECT's `pid` equals the last
 * one) and buffers events that come before the CONNECT, as the missed ones a recovering server
 * replays do. `_packet` is the Manager's hand-off to the engine (the wire); replacing it is the
 * one stub, so everything above it (ack ids, timers, buffering, disconnects) is the library's.
 */
function setup() {
  const socket: ForkcastSocket = io({ autoConnect: false, forceNew: true });
  const written: unknown[] = [];
  socket.io._packet = (packet) => void written.push(packet);
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
  // Asked for from inside the zone, as a component would, so the check on where the socket
  // was created can fail.
  const service = zone.run(() => TestBed.inject(SocketService));
  const internals = socket as unknown as SocketInternals;
  const server = {
    /** The CONNECT packet: a session id and, when the server offers recovery, a private id. */
    connect: (sid: string, pid?: string) =>
      internals.onpacket({ type: CONNECT, nsp: '/', data: { sid, pid } }),
    event: (...data: unknown[]) => internals.onpacket({ type: EVENT, nsp: '/', data }),
    drop: () => internals.onclose('transport close'),
  };
  /** Runs outside the zone, where socket.io-client's callbacks run. */
  const outside = <T>(run: () => T): T => zone.runOutsideAngular(run);
  return { service, socket, zone, server, written, outside, createdInZone };
}

/** Subscribes, recording each value and whether it arrived in the Angular zone. */
function record<T>(source: Observable<T>) {
  const seen: { value: T; inZone: boolean }[] = [];
  const subscription = source.subscribe((value) =>
    seen.push({ value, inZone: NgZone.isInAngularZone() }),
  );
  return { seen, values: () => seen.map((entry) => entry.value), subscription };
}

describe('SocketService', () => {
  it.each(['status', 'update', 'history'] as const)(
    'delivers %s events in the zone, one listener per subscription, removed on unsubscribe',
    (event) => {
      const { service, socket, outside } = setup();
      const payload = {
        status: { message: 'EHLO OK Connected', running: false },
        update: UPDATE,
        history: { updates: [UPDATE] },
      }[event];
      const stream: Observable<unknown> = service[`${event}$`];
      const [first, second] = [record(stream), record(stream)];
      expect(socket.listeners(event)).toHaveLength(2);

      outside(() => receive(socket, event, payload));
      expect(first.seen).toEqual([{ value: payload, inZone: true }]);
      expect(second.values()).toEqual([payload]);

      first.subscription.unsubscribe();
      expect(socket.listeners(event)).toHaveLength(1);
      second.subscription.unsubscribe();
      expect(socket.listeners(event)).toHaveLength(0);
    },
  );

  it('reports the connection from its current state, each connect saying what was recovered', () => {
    const { service, socket, server, outside } = setup();
    const idle = record(service.connection$);
    idle.subscription.unsubscribe();
    expect(idle.values()).toEqual(['disconnected']);
    // An opened socket is "active" (socket.io-client retries after a loss); this one was never
    // opened, because opening dials out.
    jest.spyOn(socket, 'active', 'get').mockReturnValue(true);
    const states = record(service.connection$);

    outside(() => {
      server.connect('a', 'session-1');
      server.drop();
      receive(socket.io, 'reconnect_attempt', 1);
      receive(socket.io, 'reconnect');
      server.connect('a', 'session-1');
      server.drop();
      // Too long away, or a restarted server: a new session.
      server.connect('b', 'session-2');
      server.drop();
      // A server without recovery.
      server.connect('c');
      server.drop();
    });

    expect(states.values()).toEqual<ConnectionState[]>([
      'connecting',
      'connected',
      'reconnecting',
      'connecting',
      'recovered',
      'reconnecting',
      'not-recovered',
      'reconnecting',
      'not-recovered',
      'reconnecting',
    ]);
    // Every change re-enters the zone (the first value is the subscriber's own).
    expect(states.seen.slice(1).every((entry) => entry.inZone)).toBe(true);
    states.subscription.unsubscribe();
    for (const event of ['connect', 'disconnect', 'connect_error'] as const) {
      expect(socket.listeners(event)).toHaveLength(0);
    }
    expect(socket.io.listeners('reconnect_attempt')).toHaveLength(0);
  });

  it('delivers replayed events before the recovered connect; a late subscriber saw no first connect', () => {
    const { service, server } = setup();
    server.connect('a', 'session-1');
    const seen: (number | ConnectionState)[] = [];
    service.update$.subscribe((update) => seen.push(update.seq));
    service.connection$.subscribe((state) => seen.push(state));
    server.drop();
    // Missed broadcasts come first, each with its offset, and wait for the CONNECT.
    server.event('update', { ...UPDATE, seq: 8 }, 'offset-8');
    server.event('update', { ...UPDATE, seq: 9 }, 'offset-9');
    server.connect('a', 'session-1');
    server.drop();
    server.connect('b', 'session-2');

    expect(seen).toEqual([
      'connected',
      'disconnected',
      8,
      9,
      'recovered',
      'disconnected',
      'not-recovered',
    ]);
  });

  it('sends start, stop and buy with a deadline and resolves, in the zone, with the acks', async () => {
    const { service, socket, zone, outside } = setup();
    const acks: (RunAck | BuyAck)[] = [
      { ok: true, running: true },
      { ok: false, error: 'ticker unavailable' },
      { ok: true, stock: { name: 'Apple', price: 15.95 } },
    ];
    const timeout = jest.spyOn(socket, 'timeout');
    // The only stand-in for the server: with no server there is nobody to acknowledge.
    const emitWithAck = jest.spyOn(socket, 'emitWithAck');
    acks.forEach((ack) => emitWithAck.mockResolvedValueOnce(ack));
    // Change detection runs when the zone empties its microtask queue; nothing else enters
    // the zone here, so this counts the service's own re-entry.
    let checks = 0;
    zone.onMicrotaskEmpty.subscribe(() => checks++);

    await expect(outside(() => service.start())).resolves.toEqual(acks[0]);
    expect(checks).toBeGreaterThan(0);
    await expect(service.stop()).resolves.toEqual(acks[1]);
    await expect(service.buy('Apple')).resolves.toEqual(acks[2]);
    expect(emitWithAck.mock.calls).toEqual([['start'], ['stop'], ['buy', 'Apple']]);
    expect(timeout.mock.calls).toEqual([[ACK_TIMEOUT_MS], [ACK_TIMEOUT_MS], [ACK_TIMEOUT_MS]]);
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
    const { service, socket, server, written } = setup();
    server.connect('a');

    const pending = service.start();
    expect(written).toEqual([expect.objectContaining({ data: ['start'], nsp: '/' })]);
    socket.disconnect();

    await expect(pending).resolves.toEqual({ ok: false, error: ACK_TIMEOUT_ERROR });
  });

  it('creates the socket outside the Angular zone and disconnects it when the app is destroyed', () => {
    const { socket, createdInZone } = setup();
    expect(createdInZone).toBe(false);
    const disconnect = jest.spyOn(socket, 'disconnect');
    TestBed.resetTestingModule();
    expect(disconnect).toHaveBeenCalledTimes(1);
  });
});

describe('takeControlToken', () => {
  it('takes the token from the fragment into this tab, out of the address bar', () => {
    expect(takeControlToken()).toBeUndefined();
    history.replaceState(null, '', '/?view=compact#token=s3cret-token');
    expect(takeControlToken()).toBe('s3cret-token');
    expect(location.hash).toBe('');
    expect(location.search).toBe('?view=compact');
    // Remembered, so a reload keeps control.
    expect(takeControlToken()).toBe('s3cret-token');
  });
});
