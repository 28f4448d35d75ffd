/**
 * Hostile input: arguments no valid client sends, through a real socket.io-client; frames no
 * Socket.IO client would send, written by hand on a bare WebSocket; bad Engine.IO long-polling
 * requests. Each may cost the sender its own connection, never the server: nothing reaches the
 * ticker child, which keeps its pid, HTTP answers are 4xx (never 5xx), and a well-behaved client
 * next to it keeps working and hears nothing of it.
 */
import type { IncomingMessage } from 'node:http';

import type { UpdatePayload } from '../../protocol/events';
import {
  expectNoOps,
  expectSafeError,
  healthyPid,
  spyOnOps,
  type OpSpies,
} from '../helpers/guards';
import { type Polled, PollingSession, RawSocket } from '../helpers/raw-socket';
import { grown, priceOf } from '../helpers/prices';
import { withDeadline } from '../helpers/recorder';
import { isStatus, startServer, TestClient, type TestServer } from '../helpers/server';

/** Just under Socket.IO's 16 KiB frame limit once `42<ackId>["buy","..."]` is around it. */
const LIMIT = 16 * 1024;
const JUST_UNDER_LIMIT = LIMIT - 64;

// One case per kind of refusal: that it reaches the wire, by ack and by status. The validators'
// every rule is in test/unit/validation.test.ts.
const CASES: [title: string, event: string, args: unknown[], error: string][] = [
  ['buy with no argument', 'buy', [], 'buy takes exactly one argument: a stock name'],
  [
    `buy a ${JUST_UNDER_LIMIT}-character name (just under the message limit)`,
    'buy',
    ['A'.repeat(JUST_UNDER_LIMIT)],
    'stock name longer than 64 characters',
  ],
  ['an unknown event', 'sell', ['Apple'], 'unknown event "sell"'],
  ['an unknown event named "__proto__"', '__proto__', [], 'unknown event "__proto__"'],
  ['a 1,000-character event name', 'z'.repeat(1000), [], `unknown event "${'z'.repeat(40)}"`],
  ['start with an argument', 'start', ['now'], 'start takes no arguments'],
];

let server: TestServer;
let bystander: TestClient;
let sender: TestClient;
let childPid: number;
let spies: OpSpies;
let before: UpdatePayload;
let bystanderMark: number;
let raws: RawSocket[];

beforeAll(async () => {
  // Never started: no tick can change the state while a case runs. The bystander buys once per
  // case; a high rate limit keeps the number of cases from ever mattering.
  server = await startServer({ tickMs: 1_000, opsPerSecond: 10_000 });
  childPid = await healthyPid(server.url);
  bystander = await TestClient.connect(server.url, 'bystander');
  sender = await TestClient.connect(server.url, 'sender');
  // The welcome and a barrier after it: whatever the welcome holds is in before any mark.
  for (const client of [bystander, sender]) {
    await client.welcome();
    await client.sync();
  }
});

afterAll(async () => {
  bystander.close();
  sender.close();
  await server.forkcast.close();
});

beforeEach(() => {
  raws = [];
  before = server.forkcast.ticker.snapshot();
  bystanderMark = bystander.events.mark;
  spies = spyOnOps(server.forkcast.ticker);
});

afterEach(() => {
  jest.restoreAllMocks();
  for (const raw of raws) raw.close();
});

/**
 * A hand-made connection that has joined the default namespace and had its whole welcome (a
 * round trip after the join proves everything sent before it has arrived).
 */
async function joinRaw(): Promise<RawSocket> {
  const socket = await RawSocket.connect(server.url);
  raws.push(socket);
  await socket.roundTrip();
  expect(
    socket
      .events()
      .slice(0, 2)
      .map((event) => event[0]),
  ).toEqual(['status', 'update']);
  return socket;
}

/**
 * The server, the child and the other client are exactly as before: no op reached the child,
 * the state is unchanged, /healthz is 200 with the same child, the bystander heard nothing,
 * and its own round trip (a buy, acknowledged and broadcast) takes well under a second.
 */
async function expectUnharmed(): Promise<void> {
  expectNoOps(spies);
  expect(server.forkcast.ticker.snapshot()).toEqual(before);
  expect(await healthyPid(server.url)).toBe(childPid);
  await bystander.sync();
  expect(bystander.events.since(bystanderMark)).toEqual([]);

  const sentAt = performance.now();
  const bought = await bystander.buy('Facebook');
  expect(performance.now() - sentAt).toBeLessThan(1_000);
  expect(bought.ack).toEqual({
    ok: true,
    stock: { name: 'Facebook', price: grown(priceOf(before.stocks, 'Facebook')) },
  });
  // Wait for its broadcast too, so that it cannot land in the next case's window.
  await bystander.nextUpdate({ from: bystanderMark });
}

test.each(CASES)(
  '%s: refused by ack, or by a status without one',
  async (_title, event, args, error) => {
    // The last case's buy has reached the sender too: it is not this case's answer.
    await sender.sync();
    let senderMark = sender.events.mark;
    const { ack } = await sender.emitRaw(event, ...args);
    expect(ack).toEqual({ ok: false, error });
    expectSafeError((ack as { error: unknown }).error);
    // The ack is the whole answer: no status, no update besides it.
    await sender.sync();
    expect(sender.events.since(senderMark)).toEqual([]);

    senderMark = sender.events.mark;
    sender.raw.emit(event, ...args);
    const rejection = await sender.events.waitFor(isStatus, {
      from: senderMark,
      timeoutMs: 3_000,
      what: 'sender: the rejection status',
    });
    const message = `${event.slice(0, 40)} rejected: ${error}`;
    expect(rejection.status).toEqual({ message, running: false });
    expectSafeError(rejection.status.message);
    await sender.sync();
    expect(sender.events.since(senderMark)).toEqual([rejection]);
    await expectUnharmed();
  },
);

type Outcome =
  /** The server drops this connection (and only this one). */
  | { closes: true; code?: number }
  /** The server answers with this status to the sender and keeps the connection. */
  | { status: string }
  /** The server ignores it and keeps the connection. */
  | { ignored: true };

const closes = (code?: number): Outcome => ({ closes: true, ...(code ? { code } : {}) });
const answers = (status: string): Outcome => ({ status });
const IGNORED: Outcome = { ignored: true };

const FRAMES: [title: string, frame: string, outcome: Outcome][] = [
  ['truncated: 42["buy"', '42["buy"', closes()],
  // CVE-2023-32695: this shape used to crash Socket.IO servers with an uncaught exception.
  ['an object with a toString as event name', '42[{"toString":"foo"}]', closes()],
  ['numbers only', '42[1,2]', answers('1 rejected: unknown event "1"')],
  ['an ack for an id never sent', '43999["Apple"]', IGNORED],
  ['a frame of 16 KiB + 1 byte', `4${'A'.repeat(LIMIT)}`, closes(1009)],
];

test.each(FRAMES)('raw WebSocket frame, %s', async (_title, frame, outcome) => {
  const raw = await joinRaw();
  const mark = raw.frames.mark;
  raw.send(frame);

  if ('closes' in outcome) {
    const closed = await raw.waitClosed();
    if (outcome.code !== undefined) expect(closed.code).toBe(outcome.code);
    expect(raw.events(mark)).toEqual([]);
  } else {
    if ('status' in outcome) {
      await raw.frames.waitFor((item) => String(item).startsWith('42["status"'), {
        from: mark,
        timeoutMs: 3_000,
        what: 'the rejection status',
      });
    }
    // Still connected, and nothing else came back before the barrier's answer.
    expect(await raw.roundTrip()).toEqual({ ok: false, error: 'unknown event "raw-barrier"' });
    expect(raw.events(mark)).toEqual(
      'status' in outcome ? [['status', { message: outcome.status, running: false }]] : [],
    );
    expect(raw.open).toBe(true);
  }
  await expectUnharmed();
});

const UNKNOWN_SID = { code: 1, message: 'Session ID unknown' };

/**
 * Runs `action` while a GET of the session waits at the server: Engine.IO ends a polling
 * session at once only when a GET is there to carry the close packet (otherwise a 30 s timer
 * would hold the test process open). The server's 'request' event says the GET has arrived.
 */
async function whilePolling<T>(session: PollingSession, action: () => Promise<T>) {
  const { httpServer } = server.forkcast;
  const arrived = new Promise<void>((resolve) => {
    const onRequest = (request: IncomingMessage): void => {
      if (request.method !== 'GET' || !request.url?.includes(`sid=${session.sid}`)) return;
      httpServer.off('request', onRequest);
      resolve();
    };
    httpServer.on('request', onRequest);
  });
  const polled = session.get();
  await withDeadline(arrived, 3_000, 'the pending GET to reach the server');
  const result = await action();
  return { result, polled: await polled };
}

/** The pending GET got the close packet ("1") if the server ended the session, a noop ("6") if
 * the client did; after that the sid is unknown. */
async function expectSessionClosed(
  polled: Polled,
  session: PollingSession,
  by: 'server' | 'client',
) {
  expect(polled.status).toBe(200);
  expect(polled.body.split('\x1e').at(-1)).toBe(by === 'server' ? '1' : '6');
  const next = await session.get();
  expect([next.status, JSON.parse(next.body)]).toEqual([400, UNKNOWN_SID]);
}

// Engine.IO answers unknown methods with a bare 500; server/io.ts makes them a 405.
test.each([
  ['a 1 MB POST', 'POST', `42["buy","${'A'.repeat(1024 * 1024)}"]`, 413],
  ...['PUT', 'OPTIONS'].map((method) => [method, method, null, 405]),
] as [string, string, string | null, number][])(
  'HTTP long-polling: %s on a live session is refused, and the session lives on',
  async (_title, method, body, status) => {
    const session = await PollingSession.open(server.url, true);
    expect((await fetch(session.url, { method, body })).status).toBe(status);
    const probe = await whilePolling(session, () => session.post('421["raw-barrier"]'));
    expect(probe.result).toEqual({ status: 200, body: 'ok' });
    expect(probe.polled.body).toBe('431[{"ok":false,"error":"unknown event \\"raw-barrier\\""}]');
    // Closed before expectUnharmed(), whose broadcast it would get.
    const { polled } = await whilePolling(session, () => session.post('1'));
    await expectSessionClosed(polled, session, 'client');
    await expectUnharmed();
  },
);

// Engine.IO acknowledges a text POST before it parses it; the parse then fails and ends the
// session (and nothing else).
test('HTTP long-polling: a POST of Socket.IO garbage ends that session only', async () => {
  const session = await PollingSession.open(server.url, true);
  const { result, polled } = await whilePolling(session, () =>
    session.post('42[null]\x1e42["buy"'),
  );
  expect(result.status).toBe(200);
  await expectSessionClosed(polled, session, 'server');
  await expectUnharmed();
});
