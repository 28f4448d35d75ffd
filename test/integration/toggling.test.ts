/**
 * A client toggling start and stop as fast as the rate limit allows, against the real server
 * (random loopback port) and the real ticker child, watched by a second client: the market
 * ticks no faster than TICK_MS and run statuses stay few, yet end on the ticker's state.
 */
import { type RunAck, STATUS } from '../../protocol/events';
import { delay } from '../helpers/recorder';
import {
  expectContiguousSeq,
  isStatus,
  isUpdate,
  startServer,
  TestClient,
  type TestServer,
} from '../helpers/server';

const TICK_MS = 200;
const OPS_PER_SECOND = 50;
/** The server's minimum interval between run statuses (RUN_STATUS_MIN_INTERVAL_MS). */
const STATUS_INTERVAL_MS = 250;
const TOGGLE_FOR_MS = 1_000;

let server: TestServer;
let clients: TestClient[];

beforeEach(async () => {
  server = await startServer({ tickMs: TICK_MS, opsPerSecond: OPS_PER_SECOND });
  clients = [];
});

afterEach(async () => {
  for (const client of clients) client.close();
  await server.forkcast.close();
});

async function join(name: string): Promise<TestClient> {
  const client = await TestClient.connect(server.url, name);
  clients.push(client);
  await client.welcome();
  return client;
}

const isRunStatus = (message: string): boolean =>
  message === STATUS.started || message === STATUS.stopped;

test('toggling at the rate limit neither speeds the market up nor floods everyone with statuses', async () => {
  const toggler = await join('toggler');
  const watcher = await join('watcher');
  const from = watcher.events.mark;
  const began = performance.now();

  let running = false;
  let changes = 0;
  while (performance.now() - began < TOGGLE_FOR_MS) {
    const ack: RunAck = (running ? await toggler.stop() : await toggler.start()).ack;
    // A refusal (the rate limit, when the timer runs late) changes nothing: the same op again.
    if (ack.ok) {
      changes += 1;
      running = ack.running;
    }
    // Pacing the load at the limit, not waiting for an outcome.
    await delay(1_000 / OPS_PER_SECOND);
  }
  expect(changes).toBeGreaterThanOrEqual(10);
  expect(server.forkcast.ticker.snapshot().running).toBe(running);

  const runStatuses = () =>
    watcher.events
      .since(from)
      .filter(isStatus)
      .map((event) => event.status)
      .filter((status) => isRunStatus(status.message));
  // The watcher's last run status comes to match the final state (a trailing status may be due
  // an interval after the last toggle) ...
  await watcher.events.waitFor(() => runStatuses().at(-1)?.running === running, {
    from,
    timeoutMs: 3_000,
    what: `watcher: a last status with running ${running}`,
  });
  // ... and stays so: the one bounded wait, showing that no later status contradicts it.
  await watcher.events.quietFor(2 * STATUS_INTERVAL_MS, isStatus, watcher.events.mark);
  await watcher.sync();
  const elapsed = performance.now() - began;

  const statuses = runStatuses();
  expect(statuses.at(-1)?.running).toBe(running);
  expect(statuses.length).toBeLessThanOrEqual(Math.ceil(elapsed / STATUS_INTERVAL_MS) + 2);

  // No buys: every update is a tick.
  const ticks = watcher.events.since(from).filter(isUpdate).length;
  expect(ticks).toBeGreaterThanOrEqual(1);
  expect(ticks).toBeLessThanOrEqual(Math.ceil(elapsed / TICK_MS) + 1);
  expectContiguousSeq(watcher);
}, 15_000);
