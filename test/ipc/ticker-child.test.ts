/** The compiled ticker child, forked as the server forks it: only what needs a process (wiring,
 * real timers, JSON, signals); what it answers to each message is test/unit/child.test.ts's. */
import { spawnSync } from 'node:child_process';

import { PATHS } from '../../server/paths';
import { forkTicker } from '../helpers/forked-ticker';
import { expectPricesRunOn, stateOf } from '../helpers/prices';

let forked: ReturnType<typeof forkTicker>[] = [];
function ticker(pipeStderr = false) {
  const child = forkTicker({ pipeStderr });
  forked.push(child);
  return child;
}

afterEach(async () => {
  for (const child of forked) child.process.kill('SIGKILL');
  await Promise.all(forked.map((child) => child.exited));
  expect(forked.flatMap((child) => child.malformed)).toEqual([]);
  forked = [];
});

test('over IPC: ready, then ticks at the pace on real timers, prices exact through JSON, deaf to SIGINT (Ctrl-C reaches the whole group); closing the channel makes it exit 0 though running', async () => {
  const child = ticker();
  const state = stateOf({ seq: 3, ts: Date.now() - 60_000 });
  await expect(child.init(state, 250)).resolves.toEqual(state);
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

test('run by hand rather than forked, it says what it is and exits 1, without a stack', () => {
  const run = spawnSync(process.execPath, [PATHS.tickerChild], {
    encoding: 'utf8',
    timeout: 5_000,
  });
  expect(run).toMatchObject({ status: 1, stdout: '' });
  expect(run.stderr).toBe('ticker/main.js is the ticker child: the server forks it (npm start)\n');
});
