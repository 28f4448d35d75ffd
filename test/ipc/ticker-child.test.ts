/** The compiled ticker child, forked as the server forks it: only what needs a process (wiring,
 * real timers, JSON, signals); what it answers to each message is test/unit/child.test.ts's. */
import { fork, type ChildProcess } from 'node:child_process';
import { text } from 'node:stream/consumers';

import type { UpdatePayload } from '../../protocol/events';
import { parseChildMessage, type ChildMessage, type ParentMessage } from '../../protocol/ipc';
import { PATHS } from '../../server/paths';
import { expectPricesRunOn, stateOf } from '../helpers/prices';
import { Recorder, withDeadline } from '../helpers/recorder';

let forked: { process: ChildProcess; exited: Promise<unknown> }[] = [];
const malformed: unknown[] = [];

afterEach(async () => {
  for (const child of forked) child.process.kill('SIGKILL');
  await Promise.all(forked.map((child) => child.exited));
  forked = [];
  expect(malformed.splice(0)).toEqual([]);
});

/** Forks the child as the server does and, like an idle server, reports each update delivered. */
function ticker(pipeStderr = false) {
  const child = fork(PATHS.tickerChild, [], {
    // Not the test runner's flags (loaders, inspector): the child runs as in production.
    execArgv: [],
    stdio: ['ignore', 'inherit', pipeStderr ? 'pipe' : 'inherit', 'ipc'],
    serialization: 'json',
  });
  const messages = new Recorder<ChildMessage>();
  child.on('message', (raw) => {
    const parsed = parseChildMessage(raw);
    if (!parsed.ok) return void malformed.push(raw);
    messages.push(parsed.value);
    if (parsed.value.type === 'update' && child.connected)
      child.send({ type: 'delivered', seq: parsed.value.update.seq } satisfies ParentMessage);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      messages.failAll(`the ticker child exited (code ${code}, signal ${signal})`);
      resolve({ code, signal });
    }),
  );
  /** The next `count` messages of `type`, those still to come. */
  const next = <T extends ChildMessage['type']>(type: T, count = 1) => {
    const isType = (item: ChildMessage): item is Extract<ChildMessage, { type: T }> =>
      item.type === type;
    const options = { from: messages.mark, timeoutMs: 3_000, what: `${count} ${type}` };
    return messages.waitForCount(count, isType, options);
  };
  forked.push({ process: child, exited });
  return {
    process: child,
    exited,
    /** Everything the child wrote to stderr, once it closed ('' unless `pipeStderr`). */
    stderr: child.stderr ? text(child.stderr) : Promise.resolve(''),
    send: (message: ParentMessage) => child.send(message),
    next,
    /** Sends init and resolves with the state the child says it is ready with. */
    init: async (state: UpdatePayload, tickMs: number) => {
      child.send({ type: 'init', state, tickMs, unannounced: false } satisfies ParentMessage);
      return (await next('ready'))[0]!.state;
    },
    /** Closes the IPC channel and resolves with how the child exited. */
    disconnect: () => {
      child.disconnect();
      return withDeadline(exited, 3_000, 'the child to exit after disconnect');
    },
  };
}

test('over IPC: ready, then ticks at the pace on real timers, prices exact through JSON, deaf to SIGINT (Ctrl-C reaches the whole group); closing the channel makes it exit 0 though running', async () => {
  const child = ticker();
  const state = stateOf({ seq: 3, ts: Date.now() - 60_000 });
  await child.init(state, 250);
  const startedAt = Date.now();
  child.send({ type: 'start', id: 1 });
  expect(child.process.kill('SIGINT')).toBe(true);
  const [, ticks] = await Promise.all([child.next('reply'), child.next('update', 4)]);
  // By the child's clock, none ahead of the pace (the i-th due i × 250 ms on); a `delivered` notice
  // lost on the way would hold each back a second (the fourth past 3.75 s).
  const late = ticks.map(({ update }, i) => update.ts - startedAt - i * 250);
  expect(late.filter((ms) => ms < 0)).toEqual([]);
  expect(late.at(-1)).toBeLessThan(1_750);
  expectPricesRunOn([state, ...ticks.map((tick) => tick.update)]);
  await expect(child.disconnect()).resolves.toEqual({ code: 0, signal: null });
});

// The `ready` answering an init already in the pipe, sent after the parent closed the channel,
// fails with EPIPE: the child must still leave quietly, not die of an unhandled error.
test('a child whose server hangs up while it answers exits quietly; SIGTERM ends one', async () => {
  const [child, other] = [ticker(true), ticker()];
  child.send({ type: 'init', state: stateOf(), tickMs: 1_000, unannounced: false });
  await expect(child.disconnect()).resolves.toEqual({ code: 0, signal: null });
  await expect(child.stderr).resolves.toBe('');
  await other.init(stateOf(), 1_000); // up, its handlers set
  other.process.kill('SIGTERM');
  await expect(other.exited).resolves.toEqual({ code: null, signal: 'SIGTERM' });
});
