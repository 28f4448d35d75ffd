import { readFileSync } from 'node:fs';

import { STATUS } from '../../protocol/events';
import { printFigures, recordFigure } from '../helpers/figures';
import { LEVEL } from '../helpers/logs';
import {
  cleanUpServers,
  spawnTracked,
  processRunning,
  waitForProcessGone,
} from '../helpers/processes';
import { withDeadline } from '../helpers/recorder';
import { expectSavedAfter } from '../helpers/saved-state';
import { freshStateFile } from '../helpers/server-process';
import { rawRequest, TestClient } from '../helpers/server';

jest.setTimeout(15_000);

const spawn = spawnTracked;

afterEach(async () => {
  await cleanUpServers();
});

afterAll(() => printFigures('main.test.ts'));

const TOKEN = 'correct-horse-battery-staple';

// SIGINT takes the same path: see the Ctrl-C test below.
test('reads its settings from the environment; SIGTERM then shuts down cleanly: told, disconnected, state written, port freed', async () => {
  const STATE_FILE = freshStateFile();
  const server = spawn({
    LOG_LEVEL: 'info',
    TICK_MS: '100',
    STATE_FILE,
    CONTROL_TOKEN: TOKEN,
    ALLOWED_HOSTS: ' .example.test , ',
    CLIENT_DEV_SERVER: '1',
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
  // CLIENT_DEV_SERVER: the shell loads the client from Angular's dev server.
  expect(await (await fetch(`${url}/`)).text()).toContain('src="/@vite/client"');

  const clients: TestClient[] = [];
  try {
    for (const name of ['a', 'b', 'c']) {
      // CONTROL_TOKEN: only a may control; the others watch.
      const client = await TestClient.connect(
        url,
        name,
        name === 'a' ? { auth: { token: TOKEN } } : {},
      );
      clients.push(client);
      await client.welcome();
    }
    const [a, b] = clients;
    expect((await b!.buy('Apple')).ack).toEqual({
      ok: false,
      error: expect.stringMatching(/control token/),
    });
    const started = await a!.start();
    await a!.waitForUpdates(2, { from: started.index });

    // Where each client's disconnect fell among its events.
    const disconnects = clients.map(
      (client) =>
        new Promise<{ reason: string; index: number }>((resolve) =>
          client.socket.once('disconnect', (reason) =>
            resolve({ reason, index: client.events.mark }),
          ),
        ),
    );
    const marks = clients.map((client) => client.events.mark);
    const signalledAt = performance.now();
    server.process.kill('SIGTERM');
    const exit = await withDeadline(server.exited, 5_000, 'the server to exit');
    const took = performance.now() - signalledAt;
    recordFigure('SIGTERM with 3 clients -> exit', took);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(5_000);

    const ended = await withDeadline(Promise.all(disconnects), 1_000, 'the disconnects');
    for (const [i, client] of clients.entries()) {
      const status = await client.waitForStatus(STATUS.shuttingDown, { from: marks[i] ?? 0 });
      expect(status.status).toEqual({ message: 'Server shutting down', running: true });
      // Told first, then disconnected, by the transport closing (so real clients reconnect).
      expect(ended[i]?.reason).toBe('transport close');
      expect(client.events.items.indexOf(status)).toBeLessThan(ended[i]?.index ?? -1);
    }
    // The state file holds the final state: what the clients saw last (or a tick later),
    // still running.
    expectSavedAfter(JSON.parse(readFileSync(STATE_FILE, 'utf8')), a!.lastUpdate());
  } finally {
    for (const client of clients) client.close();
  }
  expect(server.logs.items.map((line) => line['msg'])).toEqual(
    expect.arrayContaining(['shutting down', 'bye']),
  );
  expect(processRunning(tickerPid)).toBe(false);
  expect(server.stderr()).toBe('');
  // The token is a secret: it is not in the server's log.
  expect(JSON.stringify(server.logs.items)).not.toContain(TOKEN);
  // The port is free again at once: a new server listens on it.
  const next = spawn({ LOG_LEVEL: 'info', TICK_MS: '100', PORT: port, STATE_FILE });
  await expect(next.listening()).resolves.toMatchObject({ url: `http://127.0.0.1:${port}` });
});

// A stopped (SIGSTOP) ticker child cannot act on its channel closing, so the supervisor waits
// its 2 s for it: a slow shutdown that the test controls from outside. npm passes a terminal's
// Ctrl-C on to the server, which then gets SIGINT twice at once.
test('the same signal twice, as npm passes on a Ctrl-C, is one clean stop; a stuck child is killed', async () => {
  const server = spawn({ LOG_LEVEL: 'info', TICK_MS: '100' });
  const { tickerPid } = await server.listening();
  process.kill(tickerPid, 'SIGSTOP');
  try {
    const signalledAt = performance.now();
    server.process.kill('SIGINT');
    const from = server.logs.mark;
    await server.logs.waitFor((line) => line['msg'] === 'shutting down', {
      timeoutMs: 5_000,
      what: 'shutting down',
    });
    server.process.kill('SIGINT');
    const exit = await withDeadline(server.exited, 5_000, 'the server to exit');
    recordFigure('SIGINT with a stuck ticker child -> exit', performance.now() - signalledAt);
    // Taken for a second request, it would have exited 1 at once.
    expect({ exit, stderr: server.stderr() }).toEqual({
      exit: { code: 0, signal: null },
      stderr: '',
    });
    const after = server.logs.since(from);
    expect(after.map((line) => line['msg'])).not.toContain('second signal: exiting now');
    expect(after.map((line) => line['msg'])).toContain('bye');
    expect(
      after.filter((line) => line['msg'] === 'ticker child did not exit in time; killing it'),
    ).toEqual([expect.objectContaining({ level: LEVEL.warn, pid: tickerPid })]);
    expect(processRunning(tickerPid)).toBe(false);
  } finally {
    // A stopped orphan would hold the server's stdout pipe, and with it this test run, open.
    if (processRunning(tickerPid)) process.kill(tickerPid, 'SIGKILL');
  }
});

test('a second signal during a slow shutdown exits at once with code 1', async () => {
  const server = spawn({ LOG_LEVEL: 'info', TICK_MS: '100' });
  const { url, tickerPid } = await server.listening();
  const client = await TestClient.connect(url, 'a');
  process.kill(tickerPid, 'SIGSTOP');
  try {
    await client.welcome();
    server.process.kill('SIGTERM');
    await client.waitForStatus(STATUS.shuttingDown, { from: 0 });
    const secondAt = performance.now();
    server.process.kill('SIGINT');
    await expect(withDeadline(server.exited, 1_000, 'the server to exit')).resolves.toEqual({
      code: 1,
      signal: null,
    });
    recordFigure('second signal -> exit', performance.now() - secondAt);
    const messages = server.logs.items.map((line) => line['msg']);
    expect(messages).toContain('second signal: exiting now');
    expect(messages).not.toContain('bye');
  } finally {
    client.close();
    // The orphaned child wakes up to a closed channel and leaves by itself.
    if (processRunning(tickerPid)) process.kill(tickerPid, 'SIGCONT');
  }
  await waitForProcessGone(tickerPid, 1_000).catch((error: unknown) => {
    process.kill(tickerPid, 'SIGKILL');
    throw error;
  });
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

test('a bad configuration fails at once with a readable message', async () => {
  const server = spawn({ PORT: 'abc', TICK_MS: '0' });
  await expect(withDeadline(server.exited, 5_000, 'the server to exit')).resolves.toEqual({
    code: 1,
    signal: null,
  });
  expect(server.stderr()).toBe(
    'forkcast failed to start: invalid configuration: ' +
      'PORT: must be a whole number in decimal digits; TICK_MS: Too small: expected number to be >=10\n',
  );
});
