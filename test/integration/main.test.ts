/**
 * The compiled entry as a real process: configuration from the environment, clean shutdown on
 * SIGTERM and SIGINT with no orphan ticker, and a readable failure on bad configuration.
 */
import { STATUS, type UpdatePayload } from '../../protocol/events';
import { withDeadline } from '../helpers/recorder';
import { freshStateFile, killServers, processExists, spawnServer } from '../helpers/server-process';
import { TestClient } from '../helpers/server';

afterEach(async () => {
  await killServers();
});

test.each(['SIGTERM', 'SIGINT'] as const)(
  '%s shuts the server down cleanly and the ticker child with it',
  async (signal) => {
    const server = spawnServer({ LOG_LEVEL: 'info', TICK_MS: '100' });
    const { url, tickerPid } = await server.listening();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const health: unknown = await (await fetch(`${url}/healthz`)).json();
    expect(health).toEqual({
      ok: true,
      running: false,
      seq: 0,
      uptime: expect.any(Number),
      pid: tickerPid,
    });

    const client = await TestClient.connect(url, 'a');
    try {
      await client.welcome();
      const mark = client.events.mark;
      server.process.kill(signal);
      const status = await client.waitForStatus(STATUS.shuttingDown, { from: mark });
      expect(status.status).toEqual({ message: 'Server shutting down', running: false });
      await expect(withDeadline(server.exited, 5_000, 'the server to exit')).resolves.toEqual({
        code: 0,
        signal: null,
      });
    } finally {
      client.close();
    }
    expect(server.logs.items.map((line) => line['msg'])).toEqual(
      expect.arrayContaining(['shutting down', 'bye']),
    );
    expect(processExists(tickerPid)).toBe(false);
    expect(server.stderr()).toBe('');
  },
);

test('a bad configuration fails at once with a readable message', async () => {
  const server = spawnServer({ PORT: 'abc', TICK_MS: '0' });
  await expect(withDeadline(server.exited, 5_000, 'the server to exit')).resolves.toEqual({
    code: 1,
    signal: null,
  });
  expect(server.stderr()).toBe(
    'forkcast failed to start: invalid configuration: ' +
      'PORT: Invalid input: expected number, received NaN; TICK_MS: Too small: expected number to be >=10\n',
  );
});

// DESIGN: seq "survives child crashes and server restarts"; the state file carries prices,
// running and seq from one server process to the next.
test('prices, running and seq survive a server restart', async () => {
  const STATE_FILE = freshStateFile();
  const first = spawnServer({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
  const { url } = await first.listening();
  const client = await TestClient.connect(url, 'a');
  let before: UpdatePayload | undefined;
  try {
    await client.welcome();
    const started = await client.start();
    await client.waitForUpdates(3, { from: started.index });
    first.process.kill('SIGTERM');
    await withDeadline(first.exited, 5_000, 'the first server to exit');
    before = client.lastUpdate();
  } finally {
    client.close();
  }

  const second = spawnServer({ LOG_LEVEL: 'info', TICK_MS: '50', STATE_FILE });
  const again = await TestClient.connect((await second.listening()).url, 'b');
  try {
    const { snapshot } = await again.welcome();
    expect(snapshot).toMatchObject({ stocks: before?.stocks, seq: before?.seq, running: true });
    // Running resumes ticking without a start, and seq goes on without a gap.
    const next = await again.nextUpdate({ from: again.events.items.length });
    expect(next.seq).toBe((before?.seq ?? NaN) + 1);
  } finally {
    again.close();
    second.process.kill('SIGTERM');
    await second.exited;
  }
});
