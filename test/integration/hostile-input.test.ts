/**
 * Hostile input: arguments no valid client sends, through a real socket.io-client; frames no
 * Socket.IO client would send, written by hand on a bare WebSocket; bad Engine.IO long-polling
 * requests. Each may cost the sender its own connection, never the server: nothing reaches the
 * ticker child, which keeps its pid, HTTP answers are 4xx (never 5xx), and a well-behaved client
 * next to it keeps working and hears nothing of it.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

import WebSocket from 'ws';

import type { UpdatePayload } from '../../protocol/events';
import {
  expectNoOps,
  expectSafeError,
  healthyPid,
  spyOnOps,
  type OpSpies,
} from '../helpers/guards';
import { endpoint, type Polled, PollingSession, RawSocket } from '../helpers/raw-socket';
import { grown, priceOf } from '../helpers/prices';
import { withDeadline } from '../helpers/recorder';
import { isStatus, startServer, TestClient, type TestServer } from '../helpers/server';

const ONE_ARGUMENT = 'buy takes exactly one argument: a stock name';
const unknownStock = (quoted: string): string =>
  `unknown stock ${quoted}; expected one of Apple, Microsoft, Facebook`;

/** Just under Socket.IO's 16 KiB frame limit once `42<ackId>["buy","..."]` is around it. */
const JUST_UNDER_LIMIT = 16 * 1024 - 64;

// One case per kind of refusal: that it reaches the wire, by ack and by status. The validators'
// every rule is in test/unit/validation.test.ts.
const CASES: [title: string, event: string, args: unknown[], error: string][] = [
  ['buy with no argument', 'buy', [], ONE_ARGUMENT],
  ['buy {name: "Apple"}', 'buy', [{ name: 'Apple' }], 'stock name must be a string'],
  ['buy "Аpple" with a Cyrillic А', 'buy', ['\u0410pple'], unknownStock('"\u0410pple"')],
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

const LIMIT = 16 * 1024;

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

const FRAMES: [title: string, frame: string | Buffer, binary: boolean, outcome: Outcome][] = [
  ['truncated: 42["buy"', '42["buy"', false, closes()],
  ['truncated: 4 (an empty message)', '4', false, closes()],
  ['mistyped: an object instead of an array', '42{"a":1}', false, closes()],
  ['mistyped: numbers only', '42[1,2]', false, answers('1 rejected: unknown event "1"')],
  ['mistyped: a null event name', '42[null]', false, closes()],
  ['mistyped: Socket.IO packet type 9', '49', false, closes()],
  ['an Engine.IO noop (6)', '6', false, IGNORED],
  ['mistyped: Engine.IO packet type 9', '9', false, closes()],
  ['an Engine.IO ping from the client (not allowed in v4)', '2', false, closes()],
  [
    'an event named __proto__',
    '42["__proto__"]',
    false,
    answers('__proto__ rejected: unknown event "__proto__"'),
  ],
  ['the reserved event name "disconnect"', '42["disconnect","forged"]', false, closes()],
  // CVE-2023-32695: this shape used to crash Socket.IO servers with an uncaught exception.
  ['an object with a toString as event name', '42[{"toString":"foo"}]', false, closes()],
  ['an ack for an id never sent', '43999["Apple"]', false, IGNORED],
  ['a buy for a namespace never joined', '42/admin,["buy","Apple"]', false, closes()],
  ['random binary bytes', randomBytes(64), true, closes()],
  [
    'a text frame that is not UTF-8',
    Buffer.from([0x34, 0x32, 0xc3, 0x28, 0xff]),
    false,
    closes(1007),
  ],
  ['a 100 KB text frame', `42["buy","${'A'.repeat(100_000)}"]`, false, closes(1009)],
  ['a 100 KB binary frame', randomBytes(100_000), true, closes(1009)],
  ['a frame of 16 KiB + 1 byte', `4${'A'.repeat(LIMIT)}`, false, closes(1009)],
];

test.each(FRAMES)('raw WebSocket frame, %s', async (_title, frame, binary, outcome) => {
  const raw = await joinRaw();
  const mark = raw.frames.mark;
  raw.send(frame, { binary });

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

test('raw WebSocket: connecting to a namespace that does not exist is refused, the connection stays', async () => {
  const raw = await joinRaw();
  const mark = raw.frames.mark;
  raw.send('40/admin,');
  const refused = await raw.frames.waitFor((item) => String(item).startsWith('44/admin,'), {
    from: mark,
    timeoutMs: 3_000,
    what: 'the connect error for /admin',
  });
  expect(refused).toBe('44/admin,{"message":"Invalid namespace"}');
  expect(await raw.roundTrip()).toEqual({ ok: false, error: 'unknown event "raw-barrier"' });
  expect(raw.events(mark)).toEqual([]);
  await expectUnharmed();
});

test('raw WebSocket: a binary event whose attachment never comes is held, never run', async () => {
  const raw = await joinRaw();
  const mark = raw.frames.mark;
  raw.send('451-["buy",{"_placeholder":true,"num":0}]');
  // The parser waits for the attachment: nothing is answered and nothing is bought meanwhile.
  expect(await raw.frames.quietFor(150, () => true, mark)).toEqual([]);
  expect(raw.open).toBe(true);
  expectNoOps(spies);
  // A text frame where the attachment should be is a protocol violation: that connection goes.
  raw.send('42["buy","Apple"]');
  await raw.waitClosed();
  expect(raw.events(mark)).toEqual([]);
  await expectUnharmed();
});

test('raw WebSocket: a binary attachment is not a stock name', async () => {
  const raw = await joinRaw();
  const mark = raw.frames.mark;
  raw.send('451-["buy",{"_placeholder":true,"num":0}]');
  raw.send(Buffer.from('Apple'), { binary: true });
  await raw.frames.waitFor((item) => String(item).startsWith('42["status"'), {
    from: mark,
    timeoutMs: 3_000,
    what: 'the rejection status',
  });
  expect(await raw.roundTrip()).toEqual({ ok: false, error: 'unknown event "raw-barrier"' });
  expect(raw.events(mark)).toEqual([
    ['status', { message: 'buy rejected: stock name must be a string', running: false }],
  ]);
  await expectUnharmed();
});

/**
 * What the server answers to an upgrade request, read from the raw socket: ws reports a refused
 * upgrade as 'unexpected-response', and Engine.IO answers some bad upgrades with a 101 followed
 * by an HTTP 400 (it accepts the upgrade before checking the protocol version), which ws reports
 * as a bad frame. Either way no Engine.IO session is opened.
 */
async function upgradeOutcome(query: string): Promise<string> {
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?${query}`);
  const messages: string[] = [];
  ws.on('message', (data: Buffer) => messages.push(data.toString('utf8')));
  const outcome = new Promise<string>((resolve) => {
    ws.on('unexpected-response', (_request, response) => {
      resolve(`refused ${response.statusCode ?? 0}`);
      ws.terminate();
    });
    ws.on('error', () => resolve('error'));
    ws.on('close', () => resolve('closed'));
  });
  try {
    return await withDeadline(outcome, 3_000, `the upgrade with ${query} to end`);
  } finally {
    ws.terminate();
    expect(messages.filter((message) => message.startsWith('0{'))).toEqual([]);
  }
}

test.each([
  // 101 Switching Protocols, then "HTTP/1.1 400 Bad Request" as if it were a frame.
  ['an unsupported EIO', 'EIO=99&transport=websocket', 'error'],
  ['no EIO', 'transport=websocket', 'error'],
  ['an unknown sid', 'EIO=4&transport=websocket&sid=nope', 'refused 400'],
])('raw WebSocket upgrade with %s opens no session', async (_title, query, outcome) => {
  expect(await upgradeOutcome(query)).toBe(outcome);
  await expectUnharmed();
});

/** Engine.IO's JSON error bodies. */
const UNSUPPORTED_VERSION = { code: 5, message: 'Unsupported protocol version' };
const UNKNOWN_TRANSPORT = { code: 0, message: 'Transport unknown' };
const UNKNOWN_SID = { code: 1, message: 'Session ID unknown' };
const BAD_HANDSHAKE = { code: 2, message: 'Bad handshake method' };

test.each([
  ['no EIO', 'GET', 'transport=polling', UNSUPPORTED_VERSION],
  ['EIO=3', 'GET', 'EIO=3&transport=polling', UNSUPPORTED_VERSION],
  ['EIO=99', 'GET', 'EIO=99&transport=polling', UNSUPPORTED_VERSION],
  ['EIO=abc', 'GET', 'EIO=abc&transport=polling', UNSUPPORTED_VERSION],
  ['no query at all', 'GET', '', UNKNOWN_TRANSPORT],
  ['an unknown transport', 'GET', 'EIO=4&transport=pigeon', UNKNOWN_TRANSPORT],
  ['an unknown sid (GET)', 'GET', 'EIO=4&transport=polling&sid=nope', UNKNOWN_SID],
  ['an unknown sid (POST)', 'POST', 'EIO=4&transport=polling&sid=nope', UNKNOWN_SID],
  ['a POST handshake', 'POST', 'EIO=4&transport=polling', BAD_HANDSHAKE],
])('HTTP long-polling: %s is a 400', async (_title, method, query, body) => {
  // A 1 MB buy, in case the request were taken for a session's data: refused unread.
  const buy = method === 'POST' ? { body: `42["buy","${'A'.repeat(1024 * 1024)}"]` } : {};
  const response = await fetch(endpoint(server.url, query), { method, ...buy });
  expect(response.status).toBe(400);
  expect(await response.json()).toEqual(body);
  await expectUnharmed();
});

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

// Engine.IO answers unknown methods with a bare 500; server/app.ts makes them a 405.
test.each([
  ['a 1 MB POST', 'POST', `42["buy","${'A'.repeat(1024 * 1024)}"]`, 413],
  ...['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'].map((method) => [method, method, null, 405]),
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
// session (and nothing else). Binary is not allowed in v4 polling at all.
test.each([
  ['Engine.IO garbage', false, 'zzz\x1e\x00\x01\x1e9', 200],
  ['Socket.IO garbage on a joined session', true, '42[null]\x1e42["buy"', 200],
  ['a truncated packet after a valid one', true, '42["forkcast-probe"]\x1e42[', 200],
  ['binary', true, randomBytes(64), 400],
])('HTTP long-polling: a POST of %s ends that session only', async (_title, join, body, status) => {
  const session = await PollingSession.open(server.url, join);
  const { result, polled } = await whilePolling(session, () => session.post(body));
  expect(result.status).toBe(status);
  await expectSessionClosed(polled, session, 'server');
  await expectUnharmed();
});
