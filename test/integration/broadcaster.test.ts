/**
 * UpdateBroadcaster against a real Socket.IO server on a loopback port, with real clients over
 * WebSocket. Few shards and few sockets per turn, so that a handful of clients already takes
 * the chunked path (one update spread over several event-loop turns) that 10,000 would.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Server } from 'socket.io';

import {
  HISTORY_LENGTH,
  type ClientToServerEvents,
  type ServerToClientEvents,
  type UpdatePayload,
} from '../../protocol/events';
import { UpdateBroadcaster } from '../../server/broadcaster';
import type { ForkcastIo } from '../../server/io';
import { SEED } from '../helpers/prices';
import { Recorder, withDeadline } from '../helpers/recorder';
import { isStatus, TestClient } from '../helpers/server';

const SHARDS = 4;
const SOCKETS_PER_TURN = 2;
/** Below jest's 5 s, so that a wait that fails says what it waited for. */
const DEADLINE_MS = 3_000;
const BARRIER = 'forkcast-test-barrier';

interface Delivery {
  update: UpdatePayload;
  deliveries: number;
  /** `idle` as onDelivered runs: only the last update of a run may see it true. */
  idle: boolean;
  /** history() seqs as onDelivered runs. */
  history: number[];
}

/** Per socket id: what a socket was greeted with, and whether a broadcast was under way. */
interface Admission {
  seq: number;
  busy: boolean;
}

let http: HttpServer;
let io: ForkcastIo;
let url: string;
let broadcaster: UpdateBroadcaster | undefined;
let clients: TestClient[];
let delivered: Recorder<Delivery>;
let admissions: Map<string, Admission>;

beforeEach(async () => {
  http = createServer();
  io = new Server<ClientToServerEvents, ServerToClientEvents>(http, { transports: ['websocket'] });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  broadcaster = undefined;
  clients = [];
  delivered = new Recorder<Delivery>();
  admissions = new Map();
});

afterEach(async () => {
  broadcaster?.stop();
  for (const client of clients) client.close();
  // Disconnects every socket, closes the engine, then the http server.
  await withDeadline(io.close(), 5_000, 'the servers to close');
  expect(http.listening).toBe(false);
});

/** Distinct prices per seq, so that a payload mixed up with another one shows. */
function updateOf(seq: number, running = true): UpdatePayload {
  return {
    stocks: SEED.map((stock, i) => ({ name: stock.name, price: stock.price + seq * (i + 1) })),
    running,
    seq,
    ts: 1_700_000_000_000 + seq * 100,
  };
}

const INITIAL = updateOf(0, false);

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/**
 * A broadcaster wired as realtime.ts wires it: a shard at connection, then a greeting with
 * the update in flight, or when idle with the ticker's state (here: the last update
 * published, or INITIAL). `afterDelivered` runs inside onDelivered, after the delivery is
 * recorded.
 */
function startBroadcaster(options: {
  shards?: number;
  socketsPerTurn?: number;
  turnMs?: number;
  afterDelivered?: (update: UpdatePayload, self: UpdateBroadcaster) => void;
}): UpdateBroadcaster {
  const created: UpdateBroadcaster = new UpdateBroadcaster(io, {
    shards: options.shards ?? SHARDS,
    socketsPerTurn: options.socketsPerTurn ?? SOCKETS_PER_TURN,
    // One batch per turn by default, so that a few sockets make a broadcast of many turns.
    turnMs: options.turnMs ?? 0,
    onDelivered: (update, deliveries) => {
      delivered.push({
        update,
        deliveries,
        idle: created.idle,
        history: created.history().map((past) => past.seq),
      });
      options.afterDelivered?.(update, created);
    },
    onError: (error) => {
      throw error;
    },
  });
  let tickerState = INITIAL;
  const publish = created.publish.bind(created);
  created.publish = (update) => {
    tickerState = update;
    publish(update);
  };
  io.on('connection', (socket) => {
    const greeting = created.inFlight ?? tickerState;
    admissions.set(socket.id, { seq: greeting.seq, busy: !created.idle });
    created.assignShard(socket);
    socket.emit('update', greeting);
  });
  broadcaster = created;
  return created;
}

/** Connects `count` clients one after another; each is back once it has its greeting. */
async function join(count: number, prefix: string): Promise<TestClient[]> {
  const joined: TestClient[] = [];
  for (let i = 0; i < count; i++) {
    const client = await TestClient.connect(url, `${prefix}${i}`);
    clients.push(client);
    await client.nextUpdate({ from: 0 });
    joined.push(client);
  }
  return joined;
}

/**
 * A status to every socket, awaited by each client. Socket.IO keeps per-connection order, so
 * once a client has it, everything sent to that client before it has arrived.
 */
async function barrier(targets: readonly TestClient[]): Promise<void> {
  const marks = targets.map((client) => client.events.mark);
  io.emit('status', { message: BARRIER, running: false });
  await Promise.all(
    targets.map((client, i) =>
      client.waitForStatus(BARRIER, { from: marks[i]!, timeoutMs: DEADLINE_MS }),
    ),
  );
}

/**
 * Lets the event loop go round `count` times. The broadcaster advances only on setImmediate
 * turns, so this gives a stopped one every chance to send what it should not: a count of its
 * own turns, not a guess at a duration.
 */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function waitForDelivery(seq: number): Promise<Delivery> {
  return delivered.waitFor((delivery) => delivery.update.seq === seq, {
    timeoutMs: DEADLINE_MS,
    what: `onDelivered for seq ${seq}`,
  });
}

const seqsOf = (client: TestClient): number[] => client.updates.map((update) => update.seq);

test('small path: no more sockets than one turn takes get an update in one go, delivered at once', async () => {
  const clientCount = 3;
  const b = startBroadcaster({ socketsPerTurn: clientCount });
  const all = await join(clientCount, 'small');
  expect(b.idle).toBe(true);

  b.publish(updateOf(1));
  // One plain emit: the update is handed to every socket before publish returns.
  expect(b.idle).toBe(true);
  expect(delivered.items).toEqual([
    { update: updateOf(1), deliveries: clientCount, idle: true, history: [1] },
  ]);
  expect(b.inFlight).toBeNull();

  await barrier(all);
  for (const client of all) expect(client.updates).toEqual([INITIAL, updateOf(1)]);
  expect(delivered.items).toHaveLength(1);
});

test('chunked path: 30 updates published at once reach 7 clients over many turns, once each, in order', async () => {
  const clientCount = 7;
  const total = 30;
  const b = startBroadcaster({});
  const all = await join(clientCount, 'chunked');

  for (let seq = 1; seq <= total; seq++) b.publish(updateOf(seq));
  // 7 sockets at 2 per turn: the first update is still on its way, the rest queued.
  expect(b.idle).toBe(false);
  expect(delivered.items).toEqual([]);

  await waitForDelivery(total);
  expect(b.idle).toBe(true);
  expect(delivered.items.map((delivery) => delivery.update)).toEqual(
    range(1, total).map((seq) => updateOf(seq)),
  );
  expect(delivered.items.map((delivery) => delivery.deliveries)).toEqual(
    range(1, total).map(() => clientCount),
  );
  // Idle only once the last one is out: until then the next update was waiting.
  expect(delivered.items.map((delivery) => delivery.idle)).toEqual(
    range(1, total).map((seq) => seq === total),
  );

  await barrier(all);
  for (const client of all) {
    expect(client.updates).toEqual(
      range(0, total).map((seq) => (seq === 0 ? INITIAL : updateOf(seq))),
    );
  }
  expect(delivered.items).toHaveLength(total);
});

test('a turn goes on with further batches until it has taken turnMs', async () => {
  const clientCount = 7;
  const b = startBroadcaster({ turnMs: 60_000 });
  const all = await join(clientCount, 'long turn');

  b.publish(updateOf(1));
  // Batches of 2 sockets, all within the first turn: handed to every socket before publish returns.
  expect(delivered.items).toEqual([
    { update: updateOf(1), deliveries: clientCount, idle: true, history: [1] },
  ]);
  await barrier(all);
  for (const client of all) expect(client.updates).toEqual([INITIAL, updateOf(1)]);
});

test('clients joining mid-broadcast get every update from their greeting on, once each, in order', async () => {
  const lateCount = 6;
  /** Updates published after the last late joiner is in, so that all of them see several. */
  const tail = 30;
  /** A bound on the run, should the late joiners never get in (or the test fail meanwhile). */
  const maxTurns = 100_000;
  const b = startBroadcaster({});
  // Two per shard at two per turn: one shard per turn, so the late joiners land after the
  // first, second or third shard of the update on its way out, not always at the same point.
  const early = await join(2 * SHARDS, 'early');
  const earlyIds = new Set(early.map((client) => client.socket.id));
  const lateAdmitted = (): number =>
    [...admissions.keys()].filter((id) => !earlyIds.has(id)).length;

  // One update per turn while at most two are outstanding (one on its way, one queued): the
  // broadcaster is mid-broadcast on every turn, so each late joiner lands during one, at
  // whatever shard it has reached.
  const run = new Promise<{ last: number; allIn: boolean }>((resolve) => {
    let seq = 0;
    let spun = 0;
    let allInAt: number | undefined;
    const turn = (): void => {
      if (allInAt === undefined && lateAdmitted() === lateCount) allInAt = seq;
      if ((allInAt !== undefined && seq >= allInAt + tail) || ++spun > maxTurns) {
        resolve({ last: seq, allIn: allInAt !== undefined });
        return;
      }
      if (seq - delivered.items.length < 2) b.publish(updateOf(++seq));
      setImmediate(turn);
    };
    turn();
  });
  const late = await join(lateCount, 'late');
  const { last, allIn } = await withDeadline(run, DEADLINE_MS, 'the publishing run to end');
  expect(allIn).toBe(true);

  await waitForDelivery(last);
  expect(b.idle).toBe(true);
  expect(delivered.items.map((delivery) => delivery.update.seq)).toEqual(range(1, last));
  // By the end every socket is in a shard that gets every update.
  expect(delivered.items.at(-1)!.deliveries).toBe(early.length + lateCount);

  await barrier([...early, ...late]);
  const seen = (client: TestClient): { name: string; seqs: number[] } => ({
    name: client.name,
    seqs: seqsOf(client),
  });
  for (const client of early)
    expect(seen(client)).toEqual({ name: client.name, seqs: range(0, last) });
  for (const client of late) {
    const admission = admissions.get(client.socket.id!);
    // Each really joined while a broadcast was under way; otherwise this test proves little.
    expect({ name: client.name, ...admission }).toEqual({
      name: client.name,
      seq: expect.any(Number),
      busy: true,
    });
    const greeting = client.updates[0]!;
    expect(greeting).toEqual(updateOf(admission!.seq));
    expect(seen(client)).toEqual({ name: client.name, seqs: range(greeting.seq, last) });
  }
});

test('history holds the last HISTORY_LENGTH updates whose broadcast began, oldest first', async () => {
  const total = HISTORY_LENGTH + 15;
  const b = startBroadcaster({});
  expect(b.history()).toEqual([]);
  const all = await join(3, 'history');
  expect(b.history()).toEqual([]);

  for (let seq = 1; seq <= total; seq++) b.publish(updateOf(seq));
  // Only the first has begun; the rest wait in the queue and are not history yet.
  expect(b.history()).toEqual([updateOf(1)]);
  expect(b.inFlight).toEqual(updateOf(1));

  await waitForDelivery(total);
  // As each update is delivered the next has not begun: history ends with it, and grows to
  // HISTORY_LENGTH, then slides.
  expect(delivered.items.map((delivery) => delivery.history)).toEqual(
    range(1, total).map((seq) => range(Math.max(1, seq - HISTORY_LENGTH + 1), seq)),
  );
  const expected = range(total - HISTORY_LENGTH + 1, total).map((seq) => updateOf(seq));
  expect(b.history()).toEqual(expected);

  // A copy: what a caller does with it does not change the broadcaster's.
  b.history().splice(0);
  expect(b.history()).toEqual(expected);
  await barrier(all);
  for (const client of all) expect(seqsOf(client)).toEqual(range(0, total));
});

test('stop() mid-broadcast: the rest of that update and everything queued never go out', async () => {
  const b = startBroadcaster({});
  const all = await join(3, 'stop');
  for (let seq = 1; seq <= 10; seq++) b.publish(updateOf(seq));
  expect(b.idle).toBe(false);

  b.stop();
  expect(b.idle).toBe(true);
  b.publish(updateOf(11));
  expect(b.idle).toBe(true);
  expect(b.inFlight).toBeNull();
  expect(b.history()).toEqual([updateOf(1)]);

  // Unstopped, all 11 would be out in about 22 turns.
  await turns(100);
  await barrier(all);
  expect(delivered.items).toEqual([]);
  for (const client of all) expect([[0], [0, 1]]).toContainEqual(seqsOf(client));
  // The first turn's batch had seq 1, the remaining socket never got it.
  const gotFirst = all.filter((client) => seqsOf(client).includes(1)).length;
  expect(gotFirst).toBeGreaterThan(0);
  expect(gotFirst).toBeLessThan(all.length);
});

test('stop() from onDelivered: no later update is sent or reported, and publish does nothing', async () => {
  const stopAt = 3;
  const b = startBroadcaster({
    afterDelivered: (update, self) => {
      if (update.seq === stopAt) self.stop();
    },
  });
  const all = await join(3, 'stop');
  for (let seq = 1; seq <= 10; seq++) b.publish(updateOf(seq));
  await waitForDelivery(stopAt);
  expect(b.idle).toBe(true);

  b.publish(updateOf(11));
  expect(b.idle).toBe(true);
  expect(b.inFlight).toBeNull();
  expect(b.history().map((update) => update.seq)).toEqual(range(1, stopAt));

  await turns(100);
  await barrier(all);
  expect(delivered.items.map((delivery) => delivery.update.seq)).toEqual(range(1, stopAt));
  for (const client of all) expect(seqsOf(client)).toEqual(range(0, stopAt));
});

test('a publish from inside onDelivered queues behind what is waiting instead of overtaking it', async () => {
  const b = startBroadcaster({
    afterDelivered: (update, self) => {
      if (update.seq === 1) self.publish(updateOf(6));
    },
  });
  const all = await join(7, 'reentrant');
  for (let seq = 1; seq <= 5; seq++) b.publish(updateOf(seq));
  await waitForDelivery(6);
  expect(delivered.items.map((delivery) => [delivery.update.seq, delivery.deliveries])).toEqual(
    range(1, 6).map((seq) => [seq, 7]),
  );
  await barrier(all);
  for (const client of all) expect(seqsOf(client)).toEqual(range(0, 6));
});

test('a status published during a broadcast reaches every client after that update, never before', async () => {
  const b = startBroadcaster({});
  const all = await join(7, 'status');
  b.publish(updateOf(1));
  // The update is still going out, two sockets per turn.
  expect(b.idle).toBe(false);
  b.publishStatus({ message: 'Stopped', running: false });
  b.publish(updateOf(2, false));
  await waitForDelivery(2);
  await barrier(all);
  for (const client of all) {
    const order = client.events.items
      .filter((event) => !isStatus(event) || event.status.message === 'Stopped')
      .map((event) => (isStatus(event) ? 'Stopped' : event.update.seq));
    expect(order).toEqual([0, 1, 'Stopped', 2]);
  }
});
