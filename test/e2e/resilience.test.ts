/**
 * What a viewer sees when things break: the ticker child killed, the network cut, the whole
 * server restarted. The page must say so and then recover on its own, without a reload.
 */
import { once } from 'node:events';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

import type { Browser, Page } from 'playwright-core';

import { describeInBrowser, launchBrowser, openPage, pricesMove, start } from './browser';
import { LEVEL } from '../helpers/logs';
import { withDeadline } from '../helpers/recorder';
import {
  freshStateFile,
  killServers,
  spawnServer,
  type ServerProcess,
} from '../helpers/server-process';

/** A TCP relay to `port` whose connections can all be cut at once, as a network blip does; it
 * dials the port anew for each connection, so it outlives a server restart on that port. */
async function startRelay(port: number) {
  const open = new Set<Socket>();
  const relay = createServer((incoming) => {
    const outgoing = createConnection({ host: '127.0.0.1', port });
    for (const [socket, other] of [
      [incoming, outgoing],
      [outgoing, incoming],
    ]) {
      open.add(socket!);
      // One end gone (a refused dial while the server is down) takes the other with it.
      socket!.on('close', () => open.delete(socket!) && other!.destroy());
      socket!.on('error', () => undefined);
    }
    incoming.pipe(outgoing).pipe(incoming);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}/`,
    // A reset, not a close: neither end says goodbye, so the server keeps the session.
    cut: () => open.forEach((socket) => socket.resetAndDestroy()),
    close: () => {
      relay.close();
      open.forEach((socket) => socket.destroy());
    },
  };
}

describeInBrowser('a viewer when things break', () => {
  const stateFile = freshStateFile();
  let server: ServerProcess;
  let url: string;
  let tickerPid: number;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const banner = (words: string) =>
    page.getByRole('banner').getByText(words, { exact: true }).waitFor({ timeout: 15_000 });

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '200', STATE_FILE: stateFile });
    ({ url, tickerPid } = await server.listening());
    relay = await startRelay(Number(new URL(url).port));
    browser = await launchBrowser();
    // While the server is down Chromium logs the failed connections (the relay hangs up on
    // them): the scenario, not a bug.
    page = await openPage(
      browser,
      relay.url,
      problems,
      /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE/,
    );
    await start(page);
  });

  afterAll(async () => {
    await browser?.close();
    relay?.close();
    await killServers();
  });

  test('a killed ticker child shows as restarting, then prices are live again', async () => {
    process.kill(tickerPid, 'SIGKILL');
    await page.getByText('Ticker restarting', { exact: true }).waitFor({ timeout: 15_000 });
    await page.getByText('Ticker running', { exact: true }).waitFor({ timeout: 15_000 });
    await pricesMove(page);
  });

  test('a network blip: the page reconnects by itself and says nothing was missed', async () => {
    relay.cut();
    await banner('Reconnecting…');
    await banner('Reconnected — nothing missed');
    await pricesMove(page);
  });

  test('a restarted server shows as lost, then the page reconnects by itself', async () => {
    const stopping = server.logs.mark;
    server.process.kill('SIGTERM');
    const exit = await server.exited;
    const { stdout } = server.process;
    if (stdout && !stdout.closed)
      await withDeadline(once(stdout, 'close'), 5_000, "the end of the server's log");
    // A clean exit logs nothing above info; if it fails, the warnings and errors say why.
    const complaints = server.logs
      .since(stopping)
      .filter((line) => Number(line['level']) >= LEVEL.warn)
      .map((line) => line['msg']);
    expect({ ...exit, complaints }).toEqual({ code: 0, signal: null, complaints: [] });
    await page
      .getByText(/Reconnecting|Disconnected/)
      .first()
      .waitFor({ timeout: 15_000 });

    server = spawnServer({ TICK_MS: '200', STATE_FILE: stateFile, PORT: new URL(url).port });
    await server.listening();
    // A new server process has no session to recover: the page says its prices were fetched anew.
    await banner('Reconnected — prices refreshed');
    // The state file carried `running` over, so the new server ticks without a Start.
    await page.getByText('Ticker running', { exact: true }).waitFor();
    await pricesMove(page);
  });

  test('no console errors and no page errors, apart from the dropped connection itself', () => {
    expect(problems).toEqual([]);
  });
});
