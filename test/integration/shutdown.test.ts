/**
 * close(): clients are told and disconnected, the HTTP server stops listening and the ticker
 * child exits, leaving no orphan process.
 */
import { STATUS } from '../../protocol/events';
import { startServer, TestClient } from '../helpers/server';

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('close tells the clients, disconnects them and ends the ticker child', async () => {
  const { forkcast, url } = await startServer({ tickMs: 100 });
  const a = await TestClient.connect(url, 'a');
  const b = await TestClient.connect(url, 'b');
  try {
    await a.welcome();
    await b.welcome();
    const started = await a.start();
    await a.waitForUpdates(1, { from: started.index });
    const pid = forkcast.ticker.pid;
    if (pid === undefined) throw new Error('no ticker pid');
    expect(processExists(pid)).toBe(true);

    const reasons = [a, b].map(
      (client) => new Promise<string>((resolve) => client.socket.once('disconnect', resolve)),
    );
    const marks = [a.events.mark, b.events.mark];
    await forkcast.close();

    for (const [i, client] of [a, b].entries()) {
      const status = await client.waitForStatus(STATUS.shuttingDown, { from: marks[i] ?? 0 });
      expect(status.status).toEqual({ message: 'Server shutting down', running: true });
    }
    // A transport close, not a server-side disconnect: real clients (reconnection on) come back
    // by themselves when the server is restarted.
    await expect(Promise.all(reasons)).resolves.toEqual(['transport close', 'transport close']);
    expect(forkcast.httpServer.listening).toBe(false);
    expect(processExists(pid)).toBe(false);
    expect(forkcast.ticker.pid).toBeUndefined();
    await expect(forkcast.close()).resolves.toBeUndefined();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  } finally {
    a.close();
    b.close();
    await forkcast.close();
  }
});
