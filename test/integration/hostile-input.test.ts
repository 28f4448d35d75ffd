/**
 * Hostile arguments through a real socket.io-client, one case per test, each sent with an
 * ack and without one. Every refusal goes to the sender alone, changes nothing and never
 * reaches the ticker child; afterwards the server and the child still work.
 * (realtime.test.ts checks a few of these messages in one sweep; here each case also proves
 * silence towards a second client, an unchanged snapshot and an untouched child.)
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
const NOT_A_STRING = 'stock name must be a string';
const unknownStock = (quoted: string): string =>
  `unknown stock ${quoted}; expected one of Apple, Microsoft, Facebook`;

/** Just under Socket.IO's 16 KiB frame limit once `42<ackId>["buy","..."]` is around it. */
const JUST_UNDER_LIMIT = 16 * 1024 - 64;

interface HostileCase {
  title: string;
  event: string;
  args: unknown[];
  error: string;
}

const CASES: HostileCase[] = [
  { title: 'buy with no argument', event: 'buy', args: [], error: ONE_ARGUMENT },
  { title: 'buy null', event: 'buy', args: [null], error: NOT_A_STRING },
  { title: 'buy a number', event: 'buy', args: [42], error: NOT_A_STRING },
  { title: 'buy an empty object', event: 'buy', args: [{}], error: NOT_A_STRING },
  { title: 'buy an array', event: 'buy', args: [['Apple']], error: NOT_A_STRING },
  { title: 'buy {name: "Apple"}', event: 'buy', args: [{ name: 'Apple' }], error: NOT_A_STRING },
  { title: 'buy "Apple "', event: 'buy', args: ['Apple '], error: unknownStock('"Apple "') },
  { title: 'buy "apple"', event: 'buy', args: ['apple'], error: unknownStock('"apple"') },
  {
    title: 'buy "__proto__"',
    event: 'buy',
    args: ['__proto__'],
    error: unknownStock('"__proto__"'),
  },
  {
    title: 'buy "constructor"',
    event: 'buy',
    args: ['constructor'],
    error: unknownStock('"constructor"'),
  },
  { title: 'buy "toString"', event: 'buy', args: ['toString'], error: unknownStock('"toString"') },
  {
    title: 'buy "Apple" with a NUL after it',
    event: 'buy',
    args: ['Apple\u0000'],
    error: unknownStock('"Apple\\u0000"'),
  },
  {
    title: 'buy "Аpple" with a Cyrillic А',
    event: 'buy',
    args: ['\u0410pple'],
    error: unknownStock('"\u0410pple"'),
  },
  {
    title: 'buy with ten arguments',
    event: 'buy',
    args: Array.from({ length: 10 }, (_, i) => i),
    error: ONE_ARGUMENT,
  },
  {
    title: 'buy with ten arguments starting with "Apple"',
    event: 'buy',
    args: ['Apple', ...Array.from({ length: 9 }, () => 'Apple')],
    error: ONE_ARGUMENT,
  },
  {
    title: `buy a ${JUST_UNDER_LIMIT}-character name (just under the message limit)`,
    event: 'buy',
    args: ['A'.repeat(JUST_UNDER_LIMIT)],
    error: 'stock name longer than 64 characters',
  },
  { title: 'an unknown event', event: 'sell', args: ['Apple'], error: 'unknown event "sell"' },
  {
    title: 'an unknown event named "__proto__"',
    event: '__proto__',
    args: [],
    error: 'unknown event "__proto__"',
  },
  {
    title: 'an unknown event named "constructor"',
    event: 'constructor',
    args: ['Apple'],
    error: 'unknown event "constructor"',
  },
  {
    title: 'start with an argument',
    event: 'start',
    args: ['now'],
    error: 'start takes no arguments',
  },
  {
    title: 'start with five arguments',
    event: 'start',
    args: [1, 'two', null, {}, []],
    error: 'start takes no arguments',
  },
  { title: 'stop with an argument', event: 'stop', args: [true], error: 'stop takes no arguments' },
  {
    title: 'stop with three arguments',
    event: 'stop',
    args: [{ force: true }, null, 'Apple'],
    error: 'stop takes no arguments',
  },
];

let server: TestServer;
let sender: TestClient;
let bystander: TestClient;
let spies: OpSpies;
let before: UpdatePayload;
let childPid: number;

beforeAll(async () => {
  // Never started: no tick can change the state while a case runs.
  server = await startServer({ tickMs: 1_000 });
  childPid = await healthyPid(server.url);
});

afterAll(async () => {
  await server.forkcast.close();
});

beforeEach(async () => {
  // Fresh clients per case, so one case's rate-limit budget or disconnect cannot leak into the next.
  sender = await TestClient.connect(server.url, 'sender');
  bystander = await TestClient.connect(server.url, 'bystander');
  // The welcome and a barrier after it: whatever the welcome holds is in before any mark.
  for (const client of [sender, bystander]) {
    await client.welcome();
    await client.sync();
  }
  before = server.forkcast.ticker.snapshot();
  spies = spyOnOps(server.forkcast.ticker);
});

afterEach(() => {
  jest.restoreAllMocks();
  sender.close();
  bystander.close();
});

/** Nothing reached the bystander or the child, and the state is as it was. */
async function expectNothingHappened(bystanderMark: number): Promise<void> {
  await bystander.sync();
  expect(bystander.events.since(bystanderMark)).toEqual([]);
  expectNoOps(spies);
  expect(server.forkcast.ticker.snapshot()).toEqual(before);
  expect(await healthyPid(server.url)).toBe(childPid);
}

describe.each([
  ['with an ack', true],
  ['without an ack', false],
] as const)('%s', (_mode, withAck) => {
  test.each(CASES)('$title', async ({ event, args, error }) => {
    const senderMark = sender.events.mark;
    const bystanderMark = bystander.events.mark;

    if (withAck) {
      const { ack } = await sender.emitRaw(event, ...args);
      expect(ack).toEqual({ ok: false, error });
      expectSafeError((ack as { error: unknown }).error);
      // The ack is the whole answer: no status, no update besides it.
      await sender.sync();
      expect(sender.events.since(senderMark)).toEqual([]);
    } else {
      sender.raw.emit(event, ...args);
      const rejection = await sender.events.waitFor(isStatus, {
        from: senderMark,
        timeoutMs: 3_000,
        what: 'sender: the rejection status',
      });
      expect(rejection.status).toEqual({ message: `${event} rejected: ${error}`, running: false });
      expectSafeError(rejection.status.message);
      await sender.sync();
      expect(sender.events.since(senderMark)).toEqual([rejection]);
    }

    await expectNothingHappened(bystanderMark);
  });
});

/*
 * Over the limit nothing can be acknowledged: Socket.IO (maxHttpBufferSize, which is ws's
 * maxPayload) refuses a frame larger than 16 KiB from its length header, before reading or
 * parsing it, so there is no event name and no ack id to answer. It closes that one
 * connection (WebSocket close 1009), and the client sees "transport close".
 */
test.each([
  ['16 KiB + 1 byte of frame', 16 * 1024 + 1 - '42["buy",""]'.length],
  ['a 1 MiB name', 1024 * 1024],
])(
  'a message over the 16 KiB limit (%s) disconnects only its sender, unread',
  async (_title, length) => {
    const bystanderMark = bystander.events.mark;
    const disconnected = new Promise<string>((resolve) =>
      sender.socket.once('disconnect', resolve),
    );
    sender.raw.emit('buy', 'A'.repeat(length));
    await expect(disconnected).resolves.toBe('transport close');
    expect(sender.socket.connected).toBe(false);

    await expectNothingHappened(bystanderMark);
    // The server still serves new clients, with the state untouched.
    const fresh = await TestClient.connect(server.url, 'fresh');
    try {
      expect((await fresh.welcome()).snapshot).toEqual(before);
    } finally {
      fresh.close();
    }
  },
);

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
