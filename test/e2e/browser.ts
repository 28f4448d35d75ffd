import { existsSync } from 'node:fs';
import { createServer as createHttpServer, request } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';

import { chromium, type Browser, type Locator, type Page } from 'playwright-core';

import { missingTool } from '../helpers/required-tool';

/** The system Chromium (CHROME_PATH first, then where Debian, Ubuntu and Chrome put it). */
const chromePath = [
  process.env['CHROME_PATH'],
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
].find((candidate) => candidate && existsSync(candidate));

/** Outside CI a missing browser is a loud skip; in CI a failure, as a suite that silently does
 * not run proves nothing. */
export const describeInBrowser =
  chromePath || missingTool('browser tests', 'No Chromium found (set CHROME_PATH)')
    ? describe
    : describe.skip;

/** Playwright's defaults already make it headless, without Chromium's sandbox, first-run UI or
 * background calls home. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromePath! });
}

/** A page in its own browser context (nothing shared but the server), in en-US, that records
 * console errors and page errors in `problems`, except those `expected` matches, and each
 * Socket.IO transport it opens ('websocket' or 'polling', once per request) in `transports`. */
export async function openPage(browser: Browser, url: string, problems: string[], expected = /^$/) {
  const context = await browser.newContext({
    locale: 'en-US',
    viewport: { width: 1024, height: 720 },
  });
  const page = await context.newPage();
  const transports: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected.test(message.text()))
      problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('websocket', () => transports.push('websocket'));
  page.on(
    'request',
    (req) => req.url().includes('transport=polling') && transports.push('polling'),
  );
  await page.goto(url);
  return { page, transports };
}

export const priceCell = (page: Page, name: string): Locator =>
  page
    .getByRole('row', { name: new RegExp(name) })
    .getByRole('cell')
    .nth(1);

/** Waits for the Apple price on the page to change: broadcasts are arriving. */
export async function pricesMove(page: Page): Promise<void> {
  const cell = priceCell(page, 'Apple');
  const before = (await cell.textContent()) ?? '';
  await cell.filter({ hasNotText: before }).waitFor({ timeout: 15_000 });
}

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
};

/** A reverse proxy that passes HTTP through and refuses every WebSocket upgrade, as some
 * corporate proxies do. */
export async function startBlockingProxy(target: URL) {
  const proxy = createHttpServer((incoming, outgoing) => {
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
  proxy.on('upgrade', (_req, socket: Socket) => {
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  return {
    url: await listen(proxy),
    close: () => {
      proxy.closeAllConnections();
      proxy.close();
    },
  };
}
