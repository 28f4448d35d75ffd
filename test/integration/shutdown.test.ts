/** close() racing an op. What the signals that call close() do (clients told, the final state
 * written, the port and the child gone) is main.test.ts's. */
import { createApp } from '../../server/app';
import { createLogger } from '../../server/logger';
import { TestClient } from '../helpers/server';

test('an op that arrives as close starts is answered, not dropped with the connection', async () => {
  const forkcast = createApp({ logger: createLogger('silent'), tickMs: 50 });
  const { port } = await forkcast.listen(0, '127.0.0.1');
  const a = await TestClient.connect(`http://127.0.0.1:${port}`, 'a');
  try {
    await a.welcome();
    // The server starts closing the moment it receives this buy, before the buy reaches the
    // ticker.
    let closing: Promise<void> | undefined;
    const serverSide = forkcast.io.sockets.sockets.get(a.socket.id ?? '');
    serverSide?.on('buy', () => {
      closing = forkcast.close();
    });
    const { ack } = await a.buy('Apple');
    expect(ack).toEqual({ ok: false, error: 'the server is shutting down' });
    await closing;
    // Safe to call twice.
    await expect(forkcast.close()).resolves.toBeUndefined();
  } finally {
    a.close();
    await forkcast.close();
  }
});
