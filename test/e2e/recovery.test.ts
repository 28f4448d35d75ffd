/**
 * A network blip in the browser: every connection between the page and the server is cut.
 * The page reconnects by itself, the server recovers its session and replays what it missed,
 * and the page says so.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

import { chromium, type Browser } from 'playwright-core';

import { CHROMIUM_ARGS, findChromium } from './chromium';
import {
  freshStateFile,
  killServers,
  spawnServer,
  type ServerProcess,
} from '../helpers/server-process';

const chromePath = findChromium();
const describeInBrowser = chromePath ? describe : describe.skip;

/** A TCP relay to `port` whose connections can all be cut at once, as a network blip does. */
async function startRelay(port: number): Promise<{ url: string; cut: () => void; relay: Server }> {
  const open = new Set<Socket>();
  const relay = createServer((incoming) => {
    const outgoing = createConnection({ host: '127.0.0.1', port });
    for (const socket of [incoming, outgoing]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => undefined);
    }
    incoming.pipe(outgoing).pipe(incoming);
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const { port: relayPort } = relay.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${relayPort}/`,
    // A reset, not a close: neither end says goodbye, so the server keeps the session.
    cut: () => {
      for (const socket of open) socket.resetAndDestroy();
    },
    relay,
  };
}

describeInBrowser('a network blip in the browser', () => {
  let server: ServerProcess;
  let browser: Browser;

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '200', STATE_FILE: freshStateFile() });
    await server.listening();
    browser = await chromium.launch({ executablePath: chromePath!, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await killServers();
  });

  test('the page reconnects by itself, its session recovered, and says nothing was missed', async () => {
    const { url } = await server.listening();
    const relay = await startRelay(Number(new URL(url).port));
    try {
      const page = await browser.newPage({ locale: 'en-US' });
      const banner = page.getByRole('banner');
      await page.goto(relay.url);
      await page.getByRole('button', { name: 'Start', exact: true }).click();
      await page.getByText('Ticker running', { exact: true }).waitFor({ timeout: 15_000 });
      const cell = page.getByRole('row', { name: /Apple/ }).getByRole('cell').nth(1);
      const before = (await cell.textContent()) ?? '';
      // At least one broadcast has arrived: that is what a session is recovered from.
      await cell.filter({ hasNotText: before }).waitFor({ timeout: 15_000 });

      relay.cut();
      await banner.getByText('Reconnecting…', { exact: true }).waitFor({ timeout: 15_000 });
      await banner
        .getByText('Reconnected — nothing missed', { exact: true })
        .waitFor({ timeout: 15_000 });
      // And the prices are live again.
      const after = (await cell.textContent()) ?? '';
      await cell.filter({ hasNotText: after }).waitFor({ timeout: 15_000 });
      await page.close();
    } finally {
      relay.relay.close();
      relay.cut();
    }
  });
});
