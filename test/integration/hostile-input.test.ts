/**
 * Hostile arguments through a real socket.io-client, each sent with an ack and without one:
 * one case per way a message can be refused (the validators' every rule is in
 * test/unit/validation.test.ts), plus names that only the wire or the event dispatch could
 * trip on. Every refusal goes to the sender alone, changes nothing and never reaches the ticker
 * child; afterwards the server and the child still work.
 */
import type { UpdatePayload } from '../../protocol/events';
import {
  expectNoOps,
  expectSafeError,
  healthyPid,
  spyOnOps,
  type OpSpies,
} from '../helpers/guards';
import { grown, SEED, withBuy } from '../helpers/prices';
import { isStatus, startServer, TestClient, type TestServer } from '../helpers/server';

const ONE_ARGUMENT = 'buy takes exactly one argument: a stock name';
const unknownStock = (quoted: string): string =>
  `unknown stock ${quoted}; expected one of Apple, Microsoft, Facebook`;

/** Just under Socket.IO's 16 KiB frame limit once `42<ackId>["buy","..."]` is around it. */
const JUST_UNDER_LIMIT = 16 * 1024 - 64;

const CASES: [title: string, event: string, args: unknown[], error: string][] = [
  ['buy with no argument', 'buy', [], ONE_ARGUMENT],
  ['buy with ten arguments starting with "Apple"', 'buy', Array(10).fill('Apple'), ONE_ARGUMENT],
  ['buy {name: "Apple"}', 'buy', [{ name: 'Apple' }], 'stock name must be a string'],
  ['buy "__proto__"', 'buy', ['__proto__'], unknownStock('"__proto__"')],
  ['buy "Apple" with a NUL after it', 'buy', ['Apple\u0000'], unknownStock('"Apple\\u0000"')],
  ['buy "Аpple" with a Cyrillic А', 'buy', ['\u0410pple'], unknownStock('"\u0410pple"')],
  [
    `buy a ${JUST_UNDER_LIMIT}-character name (just under the message limit)`,
    'buy',
    ['A'.repeat(JUST_UNDER_LIMIT)],
    'stock name longer than 64 characters',
  ],
  ['an unknown event', 'sell', ['Apple'], 'unknown event "sell"'],
  ['an unknown event named "__proto__"', '__proto__', [], 'unknown event "__proto__"'],
  ['an unknown event named "constructor"', 'constructor', ['Apple'], 'unknown event "constructor"'],
  ['a 1,000-character event name', 'z'.repeat(1000), [], `unknown event "${'z'.repeat(40)}"`],
  ['start with an argument', 'start', ['now'], 'start takes no arguments'],
  [
    'stop with three arguments',
    'stop',
    [{ force: true }, null, 'Apple'],
    'stop takes no arguments',
  ],
];

let server: TestServer;
let sender: TestClient;
let bystander: TestClient;
let spies: OpSpies;
let before: UpdatePayload;
let childPid: number;

beforeAll(async () => {
  // Never started: no tick can change the state while a case runs. A high rate limit keeps the
  // number of cases sent by one connection from ever mattering.
  server = await startServer({ tickMs: 1_000, opsPerSecond: 10_000 });
  childPid = await healthyPid(server.url);
  sender = await TestClient.connect(server.url, 'sender');
  bystander = await TestClient.connect(server.url, 'bystander');
  // The welcome and a barrier after it: whatever the welcome holds is in before any mark.
  for (const client of [sender, bystander]) {
    await client.welcome();
    await client.sync();
  }
  before = server.forkcast.ticker.snapshot();
});

afterAll(async () => {
  sender.close();
  bystander.close();
  await server.forkcast.close();
});

beforeEach(() => {
  spies = spyOnOps(server.forkcast.ticker);
});

afterEach(() => jest.restoreAllMocks());

/** Nothing reached the bystander or the child, and the state is as it was. */
async function expectNothingHappened(bystanderMark: number): Promise<void> {
  await bystander.sync();
  expect(bystander.events.since(bystanderMark)).toEqual([]);
  expectNoOps(spies);
  expect(server.forkcast.ticker.snapshot()).toEqual(before);
  expect(await healthyPid(server.url)).toBe(childPid);
}

test.each(CASES)(
  '%s: refused by ack, or by a status without one',
  async (_title, event, args, error) => {
    const bystanderMark = bystander.events.mark;
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
    const name = event.slice(0, 40);
    expect(rejection.status).toEqual({ message: `${name} rejected: ${error}`, running: false });
    expectSafeError(rejection.status.message);
    await sender.sync();
    expect(sender.events.since(senderMark)).toEqual([rejection]);

    await expectNothingHappened(bystanderMark);
  },
);

/*
 * Over the limit nothing can be acknowledged: Socket.IO (maxHttpBufferSize, which is ws's
 * maxPayload) refuses a frame larger than 16 KiB from its length header, before reading or
 * parsing it, so there is no event name and no ack id to answer. It closes that one
 * connection (WebSocket close 1009), and the client sees "transport close".
 */
test('a message over the 16 KiB limit disconnects only its sender, unread', async () => {
  const oversized = await TestClient.connect(server.url, 'oversized');
  const bystanderMark = bystander.events.mark;
  const disconnected = new Promise<string>((resolve) =>
    oversized.socket.once('disconnect', resolve),
  );
  oversized.raw.emit('buy', 'A'.repeat(16 * 1024 + 1 - '42["buy",""]'.length));
  await expect(disconnected).resolves.toBe('transport close');
  await expectNothingHappened(bystanderMark);
  // The server still serves new clients, with the state untouched.
  const fresh = await TestClient.connect(server.url, 'fresh');
  expect((await fresh.welcome()).snapshot).toEqual(before);
  fresh.close();
});

test('after all of that the server and the child still work: a valid buy succeeds', async () => {
  // Every case above left the seed state alone.
  expect(before).toEqual({ stocks: SEED, running: false, seq: 0, ts: expect.any(Number) });
  const marks = [sender.events.mark, bystander.events.mark];
  const bought = await sender.buy('Apple');
  expect(bought.ack).toEqual({ ok: true, stock: { name: 'Apple', price: grown(14.5) } });
  expect(spies.buy).toHaveBeenCalledTimes(1);
  for (const [i, client] of [sender, bystander].entries()) {
    expect(await client.nextUpdate({ from: marks[i] ?? 0 })).toEqual({
      stocks: withBuy(SEED, 'Apple'),
      running: false,
      seq: 1,
      ts: expect.any(Number),
    });
  }
  expect(await healthyPid(server.url)).toBe(childPid);
});
