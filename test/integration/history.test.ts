/**
 * `history`: a late joiner gets the recent broadcasts at once, so it can draw trends without
 * waiting for them to build up.
 */
import { io, type Socket } from 'socket.io-client';

import {
  HISTORY_LENGTH,
  type ClientToServerEvents,
  type HistoryPayload,
  type ServerToClientEvents,
  type UpdatePayload,
} from '../../protocol/events';
import { withDeadline } from '../helpers/recorder';
import { startServer, type TestServer } from '../helpers/server';

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;

let server: TestServer;
const clients: Client[] = [];

beforeEach(async () => {
  server = await startServer({ tickMs: 20 });
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await server.forkcast.close();
});

/** Connects and resolves with the three welcome events, in the order they arrived. */
async function join(): Promise<{
  client: Client;
  order: string[];
  snapshot: UpdatePayload;
  history: HistoryPayload;
}> {
  const client: Client = io(server.url, { transports: ['websocket'], forceNew: true });
  clients.push(client);
  const order: string[] = [];
  client.on('status', () => order.push('status'));
  const snapshot = new Promise<UpdatePayload>((resolve) =>
    client.once('update', (update) => {
      order.push('update');
      resolve(update);
    }),
  );
  const history = new Promise<HistoryPayload>((resolve) =>
    client.once('history', (payload) => {
      order.push('history');
      resolve(payload);
    }),
  );
  const [first, past] = await withDeadline(Promise.all([snapshot, history]), 3_000, 'the welcome');
  return { client, order, snapshot: first, history: past };
}

test('before any broadcast, history is the snapshot alone, sent right after it', async () => {
  const { order, snapshot, history } = await join();
  expect(order).toEqual(['status', 'update', 'history']);
  expect(history).toEqual({ updates: [snapshot] });
});

test('a late joiner gets the last broadcasts in order, as a watcher saw them, capped', async () => {
  const watcher = await join();
  const seen: UpdatePayload[] = [];
  watcher.client.on('update', (update) => seen.push(update));
  await watcher.client.emitWithAck('start');
  await withDeadline(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (seen.length >= HISTORY_LENGTH + 10) resolve();
        else setTimeout(check, 20);
      };
      check();
    }),
    10_000,
    `${HISTORY_LENGTH + 10} updates`,
  );
  await watcher.client.emitWithAck('stop');

  const late = await join();
  expect(late.history.updates).toHaveLength(HISTORY_LENGTH);
  expect(late.history.updates).toEqual(seen.slice(-HISTORY_LENGTH));
  // Consecutive seq, oldest first, ending at the snapshot's seq.
  const seqs = late.history.updates.map((update) => update.seq);
  expect(seqs).toEqual(seqs.map((_, i) => late.snapshot.seq - HISTORY_LENGTH + 1 + i));
});
