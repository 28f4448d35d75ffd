import { STATUS } from '../../protocol/events';
import { printFigures, recordFigure } from '../helpers/figures';
import {
  cleanUpServers,
  processRunning,
  spawnTracked as spawn,
  waitForProcessGone,
} from '../helpers/processes';
import { withDeadline } from '../helpers/recorder';
import { rawRequest, TestClient } from '../helpers/server';

jest.setTimeout(15_000);

afterEach(cleanUpServers);
afterAll(() => printFigures('main.test.ts'));

const TOKEN = 'correct-horse-battery-staple';

// SIGINT takes the same path (the Ctrl-C test below); the state it writes is persistence.test's.
test('reads its settings from the environment; SIGTERM then shuts down cleanly: clients told, then disconnected, child gone', async () => {
  const server = spawn({
    LOG_LEVEL: 'info',
    TICK_MS: '100',
    CONTROL_TOKEN: TOKEN,
    ALLOWED_HOSTS: ' .example.test , ',
  });
  const { url, tickerPid } = await server.listening();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  const { port } = new URL(url);
  // ALLOWED_HOSTS: the listed domain served, other names refused.
  for (const [host, status] of [
    [`app.example.test:${port}`, 200],
    [`app.example.test.evil:${port}`, 403],
  ] as const) {
    expect([host, (await rawRequest(url, '/healthz', { host })).status]).toEqual([host, status]);
  }

  const client = await TestClient.connect(url, 'a');
  try {
    await client.welcome();
    // CONTROL_TOKEN: a client without it may only watch.
    const { ack } = await client.buy('Apple');
    expect(ack).toEqual({ ok: false, error: expect.stringMatching(/control token/) });
    const disconnected = new Promise<[string, number]>((resolve) =>
      client.socket.once('disconnect', (reason) => resolve([reason, client.events.mark])),
    );
    const mark = client.events.mark;
    const signalledAt = performance.now();
    server.process.kill('SIGTERM');
    const exit = await withDeadline(server.exited, 5_000, 'the server to exit');
    recordFigure('SIGTERM with a client -> exit', performance.now() - signalledAt);
    expect(exit).toEqual({ code: 0, signal: null });
    const told = await client.waitForStatus(STATUS.shuttingDown, { from: mark });
    expect(told.status).toEqual({ message: 'Server shutting down', running: false });
    // Told first, then disconnected, by the transport closing (so real clients reconnect).
    const [reason, index] = await withDeadline(disconnected, 1_000, 'the disconnect');
    expect([reason, client.events.items.indexOf(told) < index]).toEqual(['transport close', true]);
  } finally {
    client.close();
  }
  const messages = server.logs.items.map((line) => line['msg']);
  expect(messages).toEqual(expect.arrayContaining(['shutting down', 'bye']));
  expect([processRunning(tickerPid), server.stderr()]).toEqual([false, '']);
  // The token is a secret: it is not in the server's log.
  expect(JSON.stringify(server.logs.items)).not.toContain(TOKEN);
});

// A stopped (SIGSTOP) ticker child makes the shutdown slow (the supervisor's 2 s wait, then its
// kill, are its unit test's): npm passes a terminal's Ctrl-C on, so the server gets SIGINT twice.
test.each([
  ['the same signal twice, as npm passes on a Ctrl-C, is one clean stop', 'SIGINT', 0],
  ['a second, different signal during a slow shutdown exits at once with code 1', 'SIGTERM', 1],
] as const)('%s', async (_title, first, code) => {
  const server = spawn({ LOG_LEVEL: 'info', TICK_MS: '100' });
  const { tickerPid } = await server.listening();
  process.kill(tickerPid, 'SIGSTOP');
  server.process.kill(first);
  await server.logs.waitFor((line) => line['msg'] === 'shutting down', {
    timeoutMs: 5_000,
    what: 'shutting down',
  });
  const secondAt = performance.now();
  server.process.kill('SIGINT');
  // Taken for a second request, the copy would exit 1 at once; the clean stop waits for the child.
  const exit = await withDeadline(server.exited, code ? 1_000 : 5_000, 'the server to exit');
  recordFigure(`${first} then SIGINT -> exit`, performance.now() - secondAt);
  expect({ exit, stderr: server.stderr() }).toEqual({ exit: { code, signal: null }, stderr: '' });
  const messages = server.logs.items.map((line) => line['msg']);
  expect([messages.includes('second signal: exiting now'), messages.includes('bye')]).toEqual(
    code ? [true, false] : [false, true],
  );
  // The orphaned child wakes up to a closed channel and leaves by itself.
  if (code) process.kill(tickerPid, 'SIGCONT');
  await waitForProcessGone(tickerPid, 1_000);
});

// A signal after the ticker child is forked but before it is ready fails listen() (close()
// refuses the supervisor's ready waiters); the shutdown must still run to its end and exit 0.
test('SIGTERM while the server is still starting is a clean stop, not a failure', async () => {
  const server = spawn({ LOG_LEVEL: 'info', TICK_MS: '100' });
  // The child takes ~80 ms to start and say it is ready; the signal lands well inside that.
  const forked = await server.logs.waitFor((line) => line['msg'] === 'ticker child forked', {
    timeoutMs: 5_000,
    what: 'ticker child forked',
  });
  server.process.kill('SIGTERM');
  const exit = await withDeadline(server.exited, 5_000, 'the server to exit');
  expect(server.logs.items.map((line) => line['msg'])).not.toContain('forkcast listening');
  expect({ exit, stderr: server.stderr() }).toEqual({
    exit: { code: 0, signal: null },
    stderr: '',
  });
  expect(server.logs.items.map((line) => line['msg'])).toContain('bye');
  await waitForProcessGone(Number(forked['pid']), 1_000);
});

// procfs answers ENOENT to any mkdir, and Node's recursive mkdir then retries for good, on the
// thread pool: only the state file's write deadline (2 s) ends that start.
test.each([
  [
    'a bad configuration',
    { PORT: 'abc', TICK_MS: '0' },
    'invalid configuration: PORT: must be a whole number in decimal digits; TICK_MS: Too small: expected number to be >=10',
  ],
  [
    'a state file under /proc',
    { STATE_FILE: '/proc/self/x/state.json' },
    'state file /proc/self/x/state.json: .*',
  ],
])(
  '%s: the server exits 1 with a readable message, forking nothing',
  async (_title, env, message) => {
    const server = spawn(env);
    await expect(withDeadline(server.exited, 7_000, 'the server to exit')).resolves.toEqual({
      code: 1,
      signal: null,
    });
    expect(server.stderr()).toMatch(new RegExp(`^forkcast failed to start: ${message}\n$`));
    expect(server.logs.items.map((line) => line['msg'])).not.toContain('ticker child forked');
  },
);
