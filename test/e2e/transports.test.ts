/**
 * The page connects over WebSocket first, and falls back to long-polling only where
 * WebSockets cannot get through, such as behind a proxy that refuses the upgrade.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { chromium, type Browser, type Page } from 'playwright-core';

import { CHROMIUM_ARGS, findChromium } from './chromium';
import {
  freshStateFile,
  killServers,
  spawnServer,
  type ServerProcess,
} from '../helpers/server-process';

const chromePath = findChromium();
const describeInBrowser = chromePath ? describe : describe.skip;

/**
 * A reverse proxy that passes HTTP through and refuses every WebSocket upgrade, as some
 * corporate proxies do. Returns its URL.
 */
async function startBlockingProxy(target: URL): Promise<{ url: string; proxy: Server }> {
  const proxy = createServer((incoming, outgoing) => {
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  proxy.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, proxy };
}

describeInBrowser('transports in the browser', () => {
  let server: ServerProcess;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '200', STATE_FILE: freshStateFile() });
    ({ url } = await server.listening());
    browser = await chromium.launch({ executablePath: chromePath!, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    await browser?.close();
    await killServers();
  });

  /** Opens the page and records every Socket.IO request and WebSocket it makes. */
  async function open(
    address: string,
  ): Promise<{ page: Page; polls: string[]; sockets: string[] }> {
    const page = await browser.newPage({ locale: 'en-US' });
    const polls: string[] = [];
    const sockets: string[] = [];
    page.on('request', (req) => {
      if (req.url().includes('transport=polling')) polls.push(req.url());
    });
    page.on('websocket', (socket) => sockets.push(socket.url()));
    await page.goto(address);
    await page.getByText('Connected', { exact: true }).waitFor({ timeout: 10_000 });
    return { page, polls, sockets };
  }

  test('connects with one WebSocket and never long-polls when WebSockets work', async () => {
    const { page, polls, sockets } = await open(url);
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).toContain('transport=websocket');
    expect(polls).toEqual([]);
    await page.close();
  });

  test('falls back to long-polling behind a proxy that refuses WebSockets, and stays live', async () => {
    const { url: proxied, proxy } = await startBlockingProxy(new URL(url));
    try {
      const { page, polls, sockets } = await open(proxied);
      expect(sockets.length).toBeGreaterThanOrEqual(1);
      expect(polls.length).toBeGreaterThan(0);
      // Live over polling: a Start from this page reaches the ticker and prices move.
      await page.getByRole('button', { name: 'Start', exact: true }).click();
      await page.getByText('Ticker running', { exact: true }).waitFor({ timeout: 15_000 });
      const cell = page.getByRole('row', { name: /Apple/ }).getByRole('cell').nth(1);
      const before = (await cell.textContent()) ?? '';
      await cell.filter({ hasNotText: before }).waitFor({ timeout: 15_000 });
      await page.close();
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
