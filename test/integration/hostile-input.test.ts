/** Input no valid client sends may cost the sender its connection, never the server, the child
 * or a bystander. Malformed packets are Engine.IO's and Socket.IO's parsers' to test. */
import { once } from 'node:events';

import type { Socket } from 'socket.io';

import { SOCKET_PATH } from '../../protocol/events';
import { Recorder, withDeadline } from '../helpers/recorder';
import { connectWelcomed, healthyPid, spyOnOps, startServer, TestClient } from '../helpers/server';
import type { TestServer } from '../helpers/server';

/** Socket.IO's message limit (server/io.ts), and a name just under it once framed. */
const LIMIT = 16 * 1024;
const JUST_UNDER_LIMIT = LIMIT - 64;

let server: TestServer, bystander: TestClient, sender: TestClient, childPid: number;
let expectUnharmed: () => Promise<void>;

beforeAll(async () => {
  // Never started: no tick changes the state in a case; the bystander's buys never hit the limit.
  server = await startServer({ tickMs: 1_000, opsPerSecond: 10_000 });
  childPid = await healthyPid(server.url);
  // Welcomed in turn, so that no greeting lands in a case's window.
  const welcomed = await connectWelcomed(server.url, [], 'bystander', 'sender');
  [bystander, sender] = welcomed as [TestClient, TestClient];
});

afterAll(async () => {
  for (const client of [bystander, sender]) client.close();
  await server.forkcast.close();
});

// After each case: no op reached the child, state and child unchanged, the bystander heard nothing
// and its own buy is acked within 2 s (room for a loaded machine, under the 3 s of a stuck op).
beforeEach(() => {
  const before = server.forkcast.ticker.snapshot();
  const mark = bystander.events.mark;
  const expectNoOps = spyOnOps(server.forkcast.ticker);
  expectUnharmed = async () => {
    expectNoOps();
    expect(server.forkcast.ticker.snapshot()).toEqual(before);
    expect(await healthyPid(server.url)).toBe(childPid);
    await bystander.sync();
    expect(bystander.events.since(mark)).toEqual([]);
    const sentAt = performance.now();
    expect((await bystander.buy('Facebook')).ack.ok).toBe(true);
    expect(performance.now() - sentAt).toBeLessThan(2_000);
    // Wait for its broadcast too, so that it cannot land in the next case's window.
    await bystander.nextUpdate({ from: mark });
  };
});

afterEach(() => jest.restoreAllMocks());

// One case per kind of refusal, by ack and by status (every rule: validation.test.ts).
test.each<[title: string, event: string | number, args: unknown[], error: string]>([
  [
    `buy a ${JUST_UNDER_LIMIT}-character name (just under the message limit)`,
    'buy',
    ['A'.repeat(JUST_UNDER_LIMIT)],
    'stock name longer than 64 characters',
  ],
  ['an unknown event named "__proto__"', '__proto__', [], 'unknown event "__proto__"'],
  ['a 1,000-character event name', 'z'.repeat(1000), [], `unknown event "${'z'.repeat(40)}"`],
  ['a number as the event name', 1, [2], 'unknown event "1"'],
])('%s: refused by ack, or by a status without one', async (_title, event, args, error) => {
  // The last case's buy has reached the sender too: it is not this case's answer.
  await sender.sync();
  const senderMark = sender.events.mark;
  // Cast: the typed emit would not compile a number as the event name.
  const { ack } = await sender.emitRaw(event as string, ...args);
  expect(ack).toEqual({ ok: false, error });
  // Without an ack, a status to the sender alone says it; the ack was the whole answer.
  sender.raw.emit(event as string, ...args);
  const message = `${String(event).slice(0, 40)} rejected: ${error}`;
  const rejection = await sender.waitForStatus(message, { from: senderMark });
  await sender.sync();
  expect(sender.events.since(senderMark)).toEqual([rejection]);
  expect(rejection.status.running).toBe(false);
  await expectUnharmed();
});

test('a message over 16 KiB costs the sender its connection (close code 1009), nothing else', async () => {
  const flooder = await TestClient.connect(server.url, 'oversized');
  const gone = new Promise<unknown[]>((resolve) =>
    flooder.socket.once('disconnect', (...why) => resolve(why)),
  );
  flooder.raw.emit('buy', 'A'.repeat(LIMIT));
  const why = await withDeadline(gone, 3_000, 'the server to drop the sender');
  expect(why).toMatchObject(['transport close', { context: { code: 1009 } }]);
  await expectUnharmed();
});

const POLLING = `${SOCKET_PATH}/?EIO=4&transport=polling`;

test('HTTP long-polling: other methods are a 405, a 1 MB POST is a 413, and the session lives on', async () => {
  // Engine.IO answers unknown methods with a bare 500; server/io.ts makes them a 405.
  const methods = ['PUT', 'DELETE', 'OPTIONS'];
  const answers = methods.map((method) => fetch(server.url + POLLING, { method }));
  const got = (await Promise.all(answers)).map((res) => [res.status, res.headers.get('allow')]);
  expect(got).toEqual(methods.map(() => [405, 'GET, POST']));
  const opened = await (await fetch(`${server.url}${POLLING}`)).text();
  const session = `${server.url}${POLLING}&sid=${(JSON.parse(opened.slice(1)) as { sid: string }).sid}`;
  const post = (body: string) => fetch(session, { method: 'POST', body });
  expect((await post(`42["buy","${'A'.repeat(1024 * 1024)}"]`)).status).toBe(413);
  // It can still join the namespace, and be greeted.
  expect(await (await post('40')).text()).toBe('ok');
  expect((await (await fetch(session)).text()).split('\x1e').slice(0, 2)).toEqual([
    expect.stringMatching(/^40\{"sid":/),
    expect.stringMatching(/^42\["status"/),
  ]);
  // A close packet ends it at once; its greeting was not a broadcast, so the bystander's is clean.
  expect((await post('1')).status).toBe(200);
  await expectUnharmed();
});

// Its pongs faked, the heartbeat would keep it: only its transport shows that it takes nothing.
test('a connection that stops reading is cut off after two sweeps; a slow reader is kept', async () => {
  const stalling = await startServer({ tickMs: 20, stallMs: 1_000 });
  const open = async () => {
    const opened = await (await fetch(`${stalling.url}${POLLING}`)).text();
    const sid = (JSON.parse(opened.slice(1)) as { sid: string }).sid;
    await fetch(`${stalling.url}${POLLING}&sid=${sid}`, { method: 'POST', body: '40' });
    return `${stalling.url}${POLLING}&sid=${sid}`;
  };
  try {
    expect((await fetch(`${stalling.url}/api/start`, { method: 'POST' })).status).toBe(200);
    const joined = once(stalling.forkcast.io, 'connection') as Promise<[Socket]>;
    await open(); // and it never polls
    const gone = once((await joined)[0], 'disconnect');
    // Each poll is answered at once with the ticks since the last: between polls its transport is
    // unwritable, so at nearly every sweep, but never from one sweep to the next.
    const slow = await open();
    const updates = new Recorder<unknown>();
    stalling.forkcast.ticker.on('update', (update) => updates.push(update));
    const fiveTicks = { timeoutMs: 3_000, what: 'five ticks' };
    for (let i = 0; i < 25; i++) {
      const res = await fetch(slow);
      expect([res.status, await res.text()]).toEqual([200, expect.stringContaining('42["update"')]);
      // About 100 ms: a slow reader's pace, set by the ticker's updates, not by a clock.
      await updates.waitForCount(5, () => true, { ...fiveTicks, from: updates.mark });
    }
    const [why] = await withDeadline(gone, 3_000, 'the stalled socket to be cut off');
    // Its Engine.IO connection and buffer are gone too; "forced close" keeps it recoverable.
    expect([why, stalling.forkcast.io.engine.clientsCount]).toEqual(['forced close', 1]);
  } finally {
    await stalling.forkcast.close();
  }
}, 15_000); // 25 polls five ticks apart take about 3 s: past jest's 5 s on a loaded machine
