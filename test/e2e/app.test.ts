/** The product promise in a real browser on the built app, one server: tab A over a WebSocket and
 * tab B behind a proxy that refuses them (so long-polling), both with the control token, see each
 * other's Start, Buy and Stop; a tab without it only watches. How it renders: the client specs. */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Page } from 'playwright-core';

import { missingTool } from '../helpers/required-tool';
import { killServers, spawnServer } from '../helpers/server-process';

const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');
const TOKEN = 'e2e-control-token';
/** What Chromium logs when the proxy refuses WebSockets: the scenario. */
const CONNECTION_FAILED = /WebSocket connection to .* failed/;
const chromes = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const chromePath = [process.env['CHROME_PATH'], ...chromes].find((at) => at && existsSync(at));

/** Passes HTTP through and refuses every WebSocket upgrade, as some corporate proxies do. */
function blockingProxy({ hostname: host, port }: URL) {
  const proxy = createServer((incoming, outgoing) => {
    const { method, url: path, headers } = incoming;
    const forwarded = request({ host, port, method, path, headers }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    });
    forwarded.on('error', () => outgoing.destroy());
    incoming.pipe(forwarded);
  });
  return proxy.on('upgrade', (_request, socket: NodeJS.WritableStream) =>
    socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'),
  );
}

(chromePath || missingTool('browser tests', 'No Chromium found (set CHROME_PATH)')
  ? describe
  : describe.skip)('the built app in a real browser', () => {
  let proxy: Server;
  let browser: Browser;
  // Each tab's console and page errors, and each transport it opens (polling: once per request).
  const tabs = [0, 1, 2].map(() => ({ problems: [] as string[], transports: [] as string[] }));
  let pageA: Page, pageB: Page, watcher: Page;

  /** A page in its own context, in en-US. Only B's WebSocket may fail (A's would long-poll). */
  async function openPage(url: string, { problems, transports }: (typeof tabs)[0]) {
    const context = await browser.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error' && !CONNECTION_FAILED.test(message.text()))
        problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('websocket', () => transports.push('websocket'));
    page.on('request', (req) => {
      if (req.url().includes('transport=polling')) transports.push('polling');
    });
    await page.goto(url);
    return page;
  }

  beforeAll(async () => {
    const { url } = await spawnServer({ TICK_MS: '200', CONTROL_TOKEN: TOKEN }).listening();
    proxy = blockingProxy(new URL(url)).listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`;
    // Playwright's defaults: headless, no sandbox, no first-run UI or background calls home.
    browser = await chromium.launch({ executablePath: chromePath! });
    [pageA, pageB, watcher] = await Promise.all([
      openPage(`${url}#token=${TOKEN}`, tabs[0]!),
      openPage(`${proxyUrl}#token=${TOKEN}`, tabs[1]!),
      openPage(url, tabs[2]!),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    proxy?.closeAllConnections();
    proxy?.close();
    await killServers();
  });

  /** Presses a button by keyboard once enabled: a disabled one would take no focus, nor the key. */
  const press = async (page: Page, name: string) => {
    const button = page.getByRole('button', { name, exact: true, disabled: false });
    await button.waitFor({ timeout: 15_000 });
    await button.press('Enter');
  };
  const cell = (page: Page, name: string, column: number) =>
    page.getByRole('row', { name }).getByRole('cell').nth(column);

  // Stopped after each connection's last tick, focus and a buy's rise are tested elsewhere.
  test('Start in tab A (by keyboard) makes prices tick in both tabs, flashing briefly or not at all, and Stop shows Stopped in both; tab A uses one WebSocket, tab B long-polls; Buy in tab B (by keyboard) shows the price it was bought at in both', async () => {
    await pageB.emulateMedia({ reducedMotion: 'reduce' });
    await press(pageA, 'Start');
    // A tick has reached a tab when its Change column says "down" since the prices at Start.
    for (const page of [pageA, pageB])
      await cell(page, 'Apple', 2).filter({ hasText: 'down' }).waitFor({ timeout: 15_000 });
    // The first flashed price cell's computed animation; an expression, as there are no DOM types.
    const flashed = 'td[class*="flash-"]';
    const flash = async (page: Page) => {
      await page.locator(flashed).first().waitFor({ timeout: 10_000 });
      return page.evaluate(`getComputedStyle(document.querySelector('${flashed}')).animation`);
    };
    expect(await flash(pageA)).toMatch(/^0\.4s ease-out \S*flash-(up|down)-[01]$/);
    expect(await flash(pageB)).toBe('none');
    await press(pageA, 'Stop');
    for (const page of [pageA, pageB])
      await page.locator('.board__status', { hasText: 'Stopped' }).waitFor({ timeout: 15_000 });

    expect(tabs[0]!.transports).toEqual(['websocket']);
    expect(tabs[1]!.transports).toEqual(expect.arrayContaining(['websocket', 'polling']));
    await press(pageB, 'Buy Apple');
    // The live region keeps the receipt; the note beside the buttons goes after two seconds.
    const receipt = pageB.locator('[aria-live] p', { hasText: 'Bought Apple at ' });
    const price = (await receipt.textContent({ timeout: 15_000 }))!.replace('Bought Apple at ', '');
    // Tab A did nothing: only the broadcast can have carried the new price there.
    for (const page of [pageA, pageB])
      await cell(page, 'Apple', 1).filter({ hasText: price }).waitFor({ timeout: 15_000 });
  });

  async function axeProblems(page: Page): Promise<string[]> {
    const results = await new AxeBuilder({ page }).analyze();
    return results.violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.length} nodes)`);
  }

  // 640 CSS px is a 1280 px window at 200 % zoom; 320, the narrowest phones (or 400 %).
  test.each([640, 375, 320])(
    'at %i CSS px the whole table shows without scrolling sideways, with 44 px targets',
    async (width) => {
      await pageB.setViewportSize({ width, height: 720 });
      const table = (await pageB.locator('table').boundingBox())!;
      const buttons = await pageB.getByRole('button').all();
      const heights = await Promise.all(buttons.map(async (b) => (await b.boundingBox())!.height));
      expect(await pageB.evaluate('document.documentElement.scrollWidth')).toBe(width);
      expect(table.x + table.width).toBeLessThanOrEqual(width);
      expect(buttons).toHaveLength(5);
      expect(Math.min(...heights)).toBeGreaterThanOrEqual(44);
    },
  );

  // What a watch-only page holds is the page's spec.
  test('no serious or critical accessibility violations (axe-core), in a tab nor a watch-only one, screenshots, and no console errors, page errors or CSP violations', async () => {
    await watcher.getByText('Watch only').waitFor();
    await watcher.getByText('Last update').waitFor();
    expect([await axeProblems(pageA), await axeProblems(watcher)]).toEqual([[], []]);
    await pageA.screenshot({ path: path.join(SCREENSHOTS, 'desktop.png') });
    await pageB.screenshot({ path: path.join(SCREENSHOTS, 'mobile.png') });
    // A CSP violation is reported on the console as an error, so it lands there too.
    expect(tabs.flatMap((tab) => tab.problems)).toEqual([]);
  });

  // Last: it takes the server away. Losing a long-polling connection is the socket spec's.
  test('with the server gone, tab A says so, marks the prices as not live, and stays accessible', async () => {
    await killServers();
    await pageA.getByText('Not live: prices as of').waitFor({ timeout: 10_000 });
    await pageA.screenshot({ path: path.join(SCREENSHOTS, 'offline.png') });
    expect(await axeProblems(pageA)).toEqual([]);
  });
});
