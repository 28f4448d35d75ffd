/**
 * close(): clients are told and disconnected, the HTTP server stops listening and the ticker
 * child exits, leaving no orphan process.
 */
import { readFileSync } from 'node:fs';

import { STATUS } from '../../protocol/events';
import { createApp } from '../../server/app';
import { createLogger } from '../../server/logger';
import { createStateFile } from '../../server/state-file';
import { expectSavedAfter } from '../helpers/saved-state';
import { freshStateFile } from '../helpers/server-process';
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

test('an op that arrives as close starts is answered, and the final state is written', async () => {
  const file = freshStateFile();
  const stateStore = createStateFile({ path: file, logger: createLogger('silent') });
  const initialState = await stateStore.open();
  const forkcast = createApp({
    logger: createLogger('silent'),
    tickMs: 50,
    initialState,
    stateStore,
  });
  const { port } = await forkcast.listen(0, '127.0.0.1');
  const a = await TestClient.connect(`http://127.0.0.1:${port}`, 'a');
  try {
    await a.welcome();
    const started = await a.start();
    await a.waitForUpdates(3, { from: started.index });

    // The server starts closing the moment it receives this buy, before the buy reaches the
    // ticker: the buy must be answered, not dropped with the connection.
    let closing: Promise<void> | undefined;
    const serverSide = forkcast.io.sockets.sockets.get(a.socket.id ?? '');
    serverSide?.on('buy', () => {
      closing = forkcast.close();
    });
    const mark = a.events.mark;
    const { ack } = await a.buy('Apple');
    expect(ack).toEqual({ ok: false, error: 'the server is shutting down' });
    await closing;

    await a.waitForStatus(STATUS.shuttingDown, { from: mark });
    const last = a.lastUpdate();
    expect(last.running).toBe(true);
    expectSavedAfter(JSON.parse(readFileSync(file, 'utf8')), last);
  } finally {
    a.close();
    await forkcast.close();
  }
});
