/// <reference types="node" />
import { NgZone } from '@angular/core';
import { TestBed, fakeAsync, tick } from '@angular/core/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { filter, firstValueFrom, fromEvent, map, merge, timeout, type Observable } from 'rxjs';
import { io } from 'socket.io-client';

import {
  ACK_TIMEOUT_ERROR,
  ACK_TIMEOUT_MS,
  SOCKET_FACTORY,
  SocketService,
  takeControlToken,
  WATCH_ONLY,
  type ForkcastSocket,
} from '../../client/app/core/socket.service';
import { updateAt } from './fake-socket.service';

/** The first value passing `test`; the deadline is generous, a loaded reconnect takes seconds. */
const first = <T>(source: Observable<T>, test: (value: T) => boolean = () => true, ms = 8000) =>
  firstValueFrom(source.pipe(filter(test), timeout(ms)));

/** A Socket.IO server with state recovery, in a child: its store needs timers jsdom replaces. */
const SERVER = `
  const http = require('node:http').createServer();
  const io = new (require('socket.io').Server)(http, { connectionStateRecovery: {} });
  io.on('connection', (socket) => {
    socket.on('start', (ack) => ack({ ok: true, running: true }));
    socket.on('buy', (name, ack) => ack({ ok: false, error: 'ticker unavailable' }));
  });
  process.on('message', (message) => {
    if (message === 'drop') io.sockets.sockets.forEach((socket) => socket.conn.close());
    else io.emit(...message);
  });
  process.on('disconnect', () => process.exit());
  http.listen(Number(process.argv[1] ?? 0), '127.0.0.1', () => process.send(http.address().port));
`;

/** Subscribes, recording each value and whether it arrived in the Angular zone. */
function record<T>(source: Observable<T>) {
  const seen: { value: T; inZone: boolean }[] = [];
  const subscription = source.subscribe((value) =>
    seen.push({ value, inZone: NgZone.isInAngularZone() }),
  );
  return { seen, values: () => seen.map((entry) => entry.value), subscription };
}

/** The service on a socket that `dial` opens, outside the zone. */
function serviceOn(dial: () => ForkcastSocket) {
  let socket!: ForkcastSocket;
  const factory = () => {
    expect(NgZone.isInAngularZone()).toBe(false);
    return (socket = dial());
  };
  TestBed.configureTestingModule({ providers: [{ provide: SOCKET_FACTORY, useValue: factory }] });
  const zone = TestBed.inject(NgZone);
  // Asked for from inside the zone, as a component would, so the zone check can fail.
  const service = zone.run(() => TestBed.inject(SocketService));
  return { service, socket, zone };
}

let server: ChildProcess;

/** Starts the server (again, on the same port) and returns its port. */
async function start(port = 0) {
  server = spawn(process.execPath, ['-e', SERVER, String(port)], {
    cwd: path.resolve(__dirname, '../..'),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  // A 'message' event also carries a handle.
  return (await first(fromEvent(server, 'message') as Observable<[number]>, undefined, 20_000))[0];
}
afterAll(() => server?.kill());

it('resolves acks (a lost connection as ok: false) and delivers events in the zone, opening the socket outside it, a listener per subscription; says of each connect whether it was the first, recovered (missed updates first) or not, and "unreachable" while a first connect fails, retried until the server is back; disconnects when the app is destroyed', async () => {
  const url = `http://127.0.0.1:${await start()}`;
  // Polling: the browser build hears nothing from jsdom's WebSocket; the Socket above is the same.
  const dial = () => io(url, { transports: ['polling'], forceNew: true, reconnectionDelayMax: 10 });
  const { service, socket, zone } = serviceOn(dial);
  const state = (wanted: string, ms?: number) =>
    first(service.connection$, (seen) => seen === wanted, ms);
  const timeline = record(merge(service.connection$, service.update$.pipe(map((u) => u.seq))));
  const told = record(merge(service.status$, service.history$));
  await state('connected');
  // Nothing else enters the zone here, so change detections count the service's own re-entry.
  let checks = 0;
  zone.onMicrotaskEmpty.subscribe(() => checks++);
  await expect(service.start()).resolves.toEqual({ ok: true, running: true });
  expect(checks).toBeGreaterThan(0);
  await expect(service.buy('Apple')).resolves.toEqual({ ok: false, error: 'ticker unavailable' });
  // Subscribed while connected: it has missed the first connect.
  const late = record(service.connection$);
  // The service's own count of connects, and one per subscription.
  expect(socket.listeners('connect')).toHaveLength(3);
  const greeting = [{ message: 'EHLO OK Connected', running: false }, { updates: [updateAt(1)] }];
  server.send(['status', greeting[0]]);
  server.send(['history', greeting[1]]);
  // Recovery resumes after the last broadcast the client saw.
  server.send(['update', updateAt(7)]);
  await first(service.update$);

  const recovered = state('recovered');
  // A stop the server never answers, and the connection drops: the drop answers it.
  const acks: unknown[] = [];
  void service.stop().then((ack) => acks.push(ack));
  server.send('drop');
  for (const seq of [8, 9]) server.send(['update', updateAt(seq)]);
  await recovered;
  expect(acks).toEqual([{ ok: false, error: ACK_TIMEOUT_ERROR }]);
  // A restarted server knows no session; the deadlines run from here, to cover the restart.
  const renewed = state('not-recovered', 20_000);
  const exited = first(fromEvent(server, 'exit'));
  server.kill();
  await exited;
  // Subscribed while the connection is down: it has missed both connects.
  await state('reconnecting');
  const later = record(service.connection$);
  // Meanwhile a service dialling for the first time finds nothing there, and keeps trying.
  const other = TestBed.runInInjectionContext(() => new SocketService());
  const fresh = record(other.connection$);
  const reached = first(other.connection$, (seen) => seen === 'connected', 20_000);
  await first(other.connection$, (seen) => seen === 'unreachable');
  await start(Number(new URL(url).port));
  await Promise.all([renewed, reached]);
  // Nothing broadcast since: no offset to resume from, so `other`'s second connect is unrecovered.
  const bounced = [service, other].map((s) => first(s.connection$, (v) => v === 'not-recovered'));
  server.send('drop');
  await Promise.all(bounced);
  for (const recorder of [late, later]) recorder.subscription.unsubscribe();
  // Only their own listeners go.
  expect(socket.listeners('connect')).toHaveLength(2);
  // Destroying the app disconnects on purpose, which socket.io does not retry.
  TestBed.resetTestingModule();
  const idle = record(service.connection$);
  const bounce = ['reconnecting', 'connecting', 'not-recovered'];

  expect(timeline.values()).toEqual([
    ...['connecting', 'connected', 7, 'reconnecting', 'connecting'],
    ...[8, 9, 'recovered', ...bounce, ...bounce, 'disconnected'],
  ]);
  const states = timeline.values().filter((value) => typeof value === 'string');
  expect(late.values()).toEqual(states.slice(1, -1));
  expect([later.values(), fresh.values(), idle.values()]).toEqual([
    [...bounce, ...bounce],
    ['connecting', 'unreachable', 'connecting', 'connected', ...bounce, 'disconnected'],
    ['disconnected'],
  ]);
  // Every change re-enters the zone (the first value is the subscriber's own).
  expect(told.seen).toEqual(greeting.map((value) => ({ value, inZone: true })));
  expect(timeline.seen.slice(1).every((entry) => entry.inZone)).toBe(true);
  for (const recorder of [timeline, told, fresh, idle]) recorder.subscription.unsubscribe();
  const gone = ['connect', 'disconnect', 'connect_error', 'status', 'history', 'update'] as const;
  expect(gone.flatMap((event) => socket.listeners(event))).toEqual([]);
  expect(socket.io.listeners('reconnect_attempt')).toEqual([]);
  expect(socket.io.listeners('reconnect')).toEqual([]);
}, 60_000); // A restart can take seconds on a busy machine.

it('turns a missing acknowledgement to start, stop or buy into ok: false after the deadline', fakeAsync(() => {
  // Never connected, so socket.io-client holds the packets until it connects...
  const { service, socket } = serviceOn(() => io({ autoConnect: false, forceNew: true }));
  const acks: unknown[] = [];
  for (const ask of [service.start, service.stop, () => service.buy('Apple')])
    void ask().then((ack) => acks.push(ack));
  expect(socket.sendBuffer).toHaveLength(3);

  // Each tick runs the microtasks too, so the acks settled by then are in.
  tick(ACK_TIMEOUT_MS - 1);
  expect(acks).toEqual([]);
  tick(1);
  expect(acks).toEqual(Array(3).fill({ ok: false, error: ACK_TIMEOUT_ERROR }));
  // ...and drops them on timeout, so a reconnect cannot replay a buy reported failed.
  expect(socket.sendBuffer).toHaveLength(0);
}));

it('WATCH_ONLY: only when the shell says the server needs a control token and this tab has none, which the fragment gives it, out of the address bar', () => {
  // A fresh injector each time, as each page load has.
  const watchOnly = () => (TestBed.resetTestingModule(), TestBed.inject(WATCH_ONLY));
  expect(watchOnly()).toBe(false);
  document.head.insertAdjacentHTML('beforeend', '<meta name="forkcast-control" content="token">');
  expect([watchOnly(), takeControlToken()]).toEqual([true, undefined]);
  history.replaceState(null, '', '/?view=compact#token=s3cret-token');
  expect([watchOnly(), location.hash, location.search]).toEqual([false, '', '?view=compact']);
  // In this tab's storage only: the token must not outlive the tab.
  const kept = sessionStorage.getItem('forkcast.controlToken');
  expect([localStorage.length, kept]).toEqual([0, 's3cret-token']);
  // Remembered, so a reload keeps control.
  expect([watchOnly(), takeControlToken()]).toEqual([false, 's3cret-token']);
  document.querySelector('meta[name="forkcast-control"]')!.remove();
});
