/**
 * The page connects over WebSocket first, and falls back to long-polling only where
 * WebSockets cannot get through, such as behind a proxy that refuses the upgrade.
 */
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Browser, Page } from 'playwright-core';

import { describeInBrowser, launchBrowser, openPage, pricesMove, start } from './browser';
import { killServers, spawnServer } from '../helpers/server-process';

/** A reverse proxy that passes HTTP through and refuses every WebSocket upgrade, as some
 * corporate proxies do. */
async function startBlockingProxy(target: URL) {
  const proxy = createServer((incoming, outgoing) => {
    const { method, url: path, headers } = incoming;
    const forwarded = request(
      { host: target.hostname, port: target.port, method, path, headers },
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
  return { url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`, proxy };
}

describeInBrowser('transports in the browser', () => {
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    ({ url } = await spawnServer({ TICK_MS: '200' }).listening());
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await killServers();
  });

  /** Opens the page, connected, with every Socket.IO poll and WebSocket it made. */
  async function open(address: string) {
    const polls: string[] = [];
    const sockets: string[] = [];
    const page: Page = await openPage(browser, 'about:blank');
    page.on('request', (req) => {
      if (req.url().includes('transport=polling')) polls.push(req.url());
    });
    page.on('websocket', (socket) => sockets.push(socket.url()));
    await page.goto(address);
    await page.getByText('Connected', { exact: true }).waitFor({ timeout: 10_000 });
    return { page, polls, sockets };
  }

  test('connects with one WebSocket and never long-polls when WebSockets work', async () => {
    const { polls, sockets } = await open(url);
    expect(sockets).toEqual([expect.stringContaining('transport=websocket')]);
    expect(polls).toEqual([]);
  });

  test('falls back to long-polling behind a proxy that refuses WebSockets, and stays live', async () => {
    const { url: proxied, proxy } = await startBlockingProxy(new URL(url));
    try {
      const { page, polls, sockets } = await open(proxied);
      expect(sockets.length).toBeGreaterThanOrEqual(1);
      expect(polls.length).toBeGreaterThan(0);
      // Live over polling: a Start from this page reaches the ticker and prices move.
      await start(page);
      await pricesMove(page);
    } finally {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
