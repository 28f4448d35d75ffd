/** UpdateBroadcaster on a real Socket.IO server with real clients. Two sockets per emit and one
 * emit per turn: a handful of clients takes the path (an update over many turns) 10,000 would. */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Server } from 'socket.io';

import type {
  ClientToServerEvents,
  ServerToClientEvents,
  UpdatePayload,
} from '../../protocol/events';
import { HISTORY_LENGTH } from '../../protocol/stocks';
import { UpdateBroadcaster, type Outgoing } from '../../server/broadcaster';
import type { ForkcastIo, ForkcastSocket } from '../../server/io';
import { SEED } from '../helpers/prices';
import { Recorder, withDeadline } from '../helpers/recorder';
import { isStatus, TestClient } from '../helpers/server';

const BARRIER = 'forkcast-test-barrier';

let io: ForkcastIo, url: string, broadcaster: UpdateBroadcaster | undefined, clients: TestClient[];
let delivered: Recorder<{ seq: number; deliveries: number }>, published: number;
/** Per socket id: the seq it was greeted with, and whether a broadcast was under way. */
let admissions: Map<string, { seq: number; busy: boolean }>;
/** What the broadcaster's `also` saw (the HTTP event stream's feed): seqs and status messages. */
let mirrored: (number | string)[];

beforeEach(async () => {
  const http = createServer();
  io = new Server<ClientToServerEvents, ServerToClientEvents>(http, { transports: ['websocket'] });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  [clients, delivered, admissions, published, mirrored] = [[], new Recorder(), new Map(), 0, []];
});

afterEach(async () => {
  broadcaster?.stop();
  for (const client of clients) client.close();
  await withDeadline(io.close(), 5_000, 'the servers to close');
});

/** Distinct prices per seq, so that a payload mixed up with another one shows. */
function updateOf(seq: number): UpdatePayload {
  const stocks = SEED.map((stock, i) => ({ name: stock.name, price: stock.price + seq * (i + 1) }));
  return { stocks, running: seq > 0, seq, ts: 1_700_000_000_000 + seq * 100 };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** A broadcaster wired as realtime.ts wires it; `afterDelivered` runs inside onDelivered. */
function start(turnMs = 0, afterDelivered?: (seq: number, self: UpdateBroadcaster) => void) {
  const onDelivered = (update: UpdatePayload, deliveries: number) => {
    delivered.push({ seq: update.seq, deliveries });
    afterDelivered?.(update.seq, b);
  };
  const mirror = ({ payload }: Outgoing) =>
    mirrored.push('seq' in payload ? payload.seq : payload.message);
  const b: UpdateBroadcaster = new UpdateBroadcaster(io, onDelivered, mirror, 2, turnMs);
  io.on('connection', (socket) => {
    const { update } = b.admit(socket, updateOf(published), sent());
    admissions.set(socket.id, { seq: update.seq, busy: published > delivered.items.length });
    socket.emit('update', update);
  });
  broadcaster = b;
  return b;
}

/** Publishes up to seq `to`; `busy`: as if an op just came in, so that updates go out in turns. */
function publish(b: UpdateBroadcaster, to: number, busy = true): void {
  if (busy) b.opArrived();
  while (published < to) b.publish(updateOf(++published));
}

/** The host's history: every update published. */
const sent = () => range(1, published).map(updateOf);

/** What a socket connecting now would be greeted with. */
const peek = (b: UpdateBroadcaster) =>
  b.admit({ join: () => undefined }, updateOf(published), sent());

/** Connects `count` clients one after another; each is back once it has its greeting. */
async function join(count: number, prefix: string): Promise<TestClient[]> {
  for (let i = 0; i < count; i++) {
    clients.push(await TestClient.connect(url, `${prefix}${i}`));
    await clients.at(-1)!.nextUpdate({ from: 0 });
  }
  return clients.slice(-count);
}

/** A status to every socket, awaited by each: per-connection order makes it a barrier. */
async function barrier(targets: readonly TestClient[]): Promise<void> {
  const marks = targets.map((client) => client.events.mark);
  io.emit('status', { message: BARRIER, running: false });
  await Promise.all(targets.map((client, i) => client.waitForStatus(BARRIER, { from: marks[i]! })));
}

const waitForDelivery = (seq: number) =>
  delivered.waitFor((delivery) => delivery.seq === seq, { timeoutMs: 3_000, what: `seq ${seq}` });

/** What a client got besides barriers: the seq of each update, the message of each status. */
const seen = (client: TestClient): (number | string)[] =>
  client.events.items
    .map((event) => (isStatus(event) ? event.status.message : event.update.seq))
    .filter((item) => item !== BARRIER);

test.each([
  ['while ops come in: over many turns at one emit a turn', true, 0, HISTORY_LENGTH + 15],
  ['while ops come in: in one turn of many emits while it lasts under turnMs', true, 60_000, 1],
  ['with no op for a second: in one emit, whatever turnMs', false, 0, 30],
])(
  '7 clients get each update %s, once each, in order; a socket joining is greeted with the update going out and the history up to it (the last HISTORY_LENGTH)',
  async (_title, busy, turnMs, total) => {
    const b = start(turnMs);
    const all = await join(7, 'client');
    expect(peek(b)).toEqual({ update: updateOf(0), history: [updateOf(0)] });
    publish(b, total, busy);
    // In one turn: all out before publish returns; else the first is on its way, the rest queued.
    const begun = turnMs > 0 || !busy ? total : 1;
    expect(delivered.items.length).toBe(begun === total ? total : 0);
    expect(peek(b)).toEqual({ update: updateOf(begun), history: range(1, begun).map(updateOf) });

    await waitForDelivery(total);
    expect(delivered.items).toEqual(range(1, total).map((seq) => ({ seq, deliveries: 7 })));
    const recent = range(Math.max(1, total - HISTORY_LENGTH + 1), total).map(updateOf);
    expect(peek(b)).toEqual({ update: updateOf(total), history: recent });
    await barrier(all);
    for (const client of all) expect(seen(client)).toEqual(range(0, total));
  },
);

test('clients joining mid-broadcast get every update from their greeting on, once each, in order', async () => {
  const [lateCount, tail] = [6, 30]; // tail: updates after the last late joiner is in
  const b = start();
  const early = await join(8, 'early');
  // One update per turn while at most two are outstanding: each late joiner lands mid-broadcast.
  let last = Infinity;
  const turn = (): void => {
    if (published - delivered.items.length < 2 && published < last) publish(b, published + 1);
    if (published < last) setImmediate(turn);
  };
  turn();
  const late = await join(lateCount, 'late').finally(() => (last = published + tail));

  // Stalled or not, the publishing loop ends with the wait.
  await waitForDelivery(last).finally(() => (last = published));
  expect(delivered.items.map((delivery) => delivery.seq)).toEqual(range(1, last));
  // By the end every socket is in a shard that gets every update.
  expect(delivered.items.at(-1)!.deliveries).toBe(early.length + lateCount);
  await barrier([...early, ...late]);
  // The early ones get every update as in the first test; each late one from its greeting on.
  for (const client of late) {
    const admission = admissions.get(client.socket.id!)!;
    // Each really joined while a broadcast was under way; otherwise this test proves little.
    expect([client.name, admission.busy]).toEqual([client.name, true]);
    expect(client.updates[0]).toEqual(updateOf(admission.seq));
    expect([client.name, seen(client)]).toEqual([client.name, range(admission.seq, last)]);
  }
});

// The block being filled (shard 1) is not sent yet: a socket admitted now must go to one that is.
test('a socket admitted between two turns of a broadcast joins a shard already sent: it gets the update once', async () => {
  const b = start();
  const early = await join(3, 'early'); // shards 0, 0 and 1
  let held: ForkcastSocket | undefined;
  io.removeAllListeners('connection');
  io.on('connection', (socket) => (held = socket));
  const late = await TestClient.connect(url, 'late');
  clients.push(late);
  publish(b, 1); // the first turn sends shard 0 only
  held!.emit('update', b.admit(held!, updateOf(1), sent()).update);
  await waitForDelivery(1);
  await barrier([...early, late]);
  expect(seen(late)).toEqual([1]);
  expect(delivered.items).toEqual([{ seq: 1, deliveries: 3 }]);
});

test.each([
  ['mid-broadcast', 0],
  ['from onDelivered', 3],
])('stop() %s: nothing later is sent or reported, and publish does nothing', async (_title, at) => {
  const b = start(0, (seq, self) => seq === at && self.stop());
  const all = await join(3, 'stop');
  publish(b, 10);
  if (at === 0) b.stop();
  else await waitForDelivery(at);
  publish(b, 11);
  // Nothing goes out: the greeting is the snapshot.
  expect(peek(b).update).toEqual(updateOf(11));

  // Unstopped, all 11 would be out in about 22 turns.
  for (let i = 0; i < 100; i++) await new Promise((resolve) => setImmediate(resolve));
  await barrier(all);
  expect(delivered.items.map((delivery) => delivery.seq)).toEqual(range(1, at));
  if (at > 0) for (const client of all) expect(seen(client)).toEqual(range(0, at));
  else {
    // The first turn's batch had seq 1; the remaining socket never got it.
    const gotFirst = all.filter((client) => seen(client).includes(1)).length;
    expect([gotFirst, all.length - gotFirst]).toEqual([2, 1]);
  }
});

test('a status published during a broadcast, or an update from inside onDelivered, queues behind what waits: it never overtakes', async () => {
  const b = start(0, (seq, self) => seq === 1 && self.publish(updateOf(6)));
  const all = await join(7, 'order');
  publish(b, 1);
  b.publishStatus({ message: 'Stopped', running: false });
  publish(b, 5);
  await waitForDelivery(6);
  expect(delivered.items).toEqual(range(1, 6).map((seq) => ({ seq, deliveries: 7 })));
  await barrier(all);
  for (const client of all) expect(seen(client)).toEqual([0, 1, 'Stopped', 2, 3, 4, 5, 6]);
  // The event stream is fed in the sockets' order.
  expect(mirrored).toEqual([1, 'Stopped', 2, 3, 4, 5, 6]);
});
