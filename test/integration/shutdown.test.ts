/** close() racing an op; what the signals that call close() do is main.test.ts's. */
import { readFileSync } from 'node:fs';

import { STATUS } from '../../protocol/events';
import { createApp } from '../../server/app';
import { createLogger } from '../../server/logger';
import { createStateFile } from '../../server/state-file';
import { expectSavedAfter } from '../helpers/saved-state';
import { freshStateFile } from '../helpers/server-process';
import { TestClient } from '../helpers/server';

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
    expect(forkcast.httpServer.listening).toBe(false);
    expect(forkcast.ticker.pid).toBeUndefined();
    // Safe to call twice.
    await expect(forkcast.close()).resolves.toBeUndefined();
  } finally {
    a.close();
    await forkcast.close();
  }
});
