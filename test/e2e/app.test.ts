/**
 * The product promise, checked in a real browser on the built app, one server for the whole
 * story. Two tabs see the same live prices, and Start, Buy and Stop in one show up in the
 * other; tab A connects with one WebSocket, tab B sits behind a proxy that refuses WebSockets
 * and stays live over long-polling. What the page does when things break is shown a tier
 * lower: the server's statuses and recovery (test/integration), the page's words for them and
 * the service's reconnects against a real Socket.IO server (test/client).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import AxeBuilder from '@axe-core/playwright';
import type { Browser, Locator, Page } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';

import type {
  ClientToServerEvents,
  ServerToClientEvents,
  UpdatePayload,
} from '../../protocol/events';
import {
  describeInBrowser,
  launchBrowser,
  openPage,
  priceCell,
  pricesMove,
  startBlockingProxy,
} from './browser';
import { Recorder, withDeadline } from '../helpers/recorder';
import { killServers, spawnServer } from '../helpers/server-process';

const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
/** What Chromium logs when the proxy refuses WebSockets: the scenario. */
const CONNECTION_FAILED = /WebSocket connection to .* failed/;

describeInBrowser('the built app in a real browser', () => {
  let proxy: Awaited<ReturnType<typeof startBlockingProxy>>;
  let browser: Browser;
  let observer: Socket<ServerToClientEvents, ClientToServerEvents>;
  const updates = new Recorder<UpdatePayload>();
  let tabA: Awaited<ReturnType<typeof openPage>>;
  let tabB: Awaited<ReturnType<typeof openPage>>;
  let pageA: Page;
  let pageB: Page;
  // Each tab's console and page errors.
  const [problemsA, problemsB]: [string[], string[]] = [[], []];

  beforeAll(async () => {
    const { url } = await spawnServer({ TICK_MS: '200' }).listening();
    [proxy, browser] = await Promise.all([startBlockingProxy(new URL(url)), launchBrowser()]);
    // A plain Socket.IO client watches alongside the tabs: it is the reference for what the
    // server broadcast, independent of the UI under test.
    observer = io(url, { transports: ['websocket'] });
    observer.on('update', (update) => updates.push(update));
    [tabA, tabB] = await Promise.all([
      openPage(browser, url, problemsA),
      openPage(browser, proxy.url, problemsB, CONNECTION_FAILED),
    ]);
    [pageA, pageB] = [tabA.page, tabB.page];
  });

  afterAll(async () => {
    observer?.close();
    await browser?.close();
    proxy?.close();
    await killServers();
  });

  const heading = (page: Page): Locator => page.getByRole('heading', { level: 2 });
  const button = (page: Page, name: string): Locator =>
    page.getByRole('button', { name, exact: true });

  /** The observer's latest update if it matches, else the next one that does. */
  const updateWhere = (matches: (update: UpdatePayload) => boolean): Promise<UpdatePayload> =>
    updates.waitFor(matches, {
      from: Math.max(0, updates.mark - 1),
      timeoutMs: 15_000,
      what: 'a matching update',
    });
  const latest = (): UpdatePayload => updates.items.at(-1)!;

  /** Both tabs show every price of the update, as the server sent it, in dollars. */
  async function bothShow(update: UpdatePayload): Promise<void> {
    for (const page of [pageA, pageB]) {
      for (const stock of update.stocks) {
        await priceCell(page, stock.name)
          .filter({ hasText: usd.format(stock.price) })
          .waitFor({ timeout: 15_000 });
      }
    }
  }

  // The table's rows and headings are the page's spec's.
  test('both tabs show the server snapshot in dollars', async () => {
    await bothShow(await updateWhere(() => true));
  });

  test('tab A uses one WebSocket and never long-polls; behind the proxy, tab B long-polls', () => {
    expect(tabA.transports).toEqual(['websocket']);
    expect(tabB.transports).toContain('websocket');
    expect(tabB.transports).toContain('polling');
  });

  test('Start in one tab makes prices tick in both', async () => {
    const before = await updateWhere(() => true);
    await button(pageA, 'Start').click();
    await heading(pageB).filter({ hasText: 'Processing' }).waitFor();
    // Several ticks, so that the two-decimal display has certainly moved.
    const later = await updateWhere((update) => update.seq >= before.seq + 4);
    expect(later.running).toBe(true);
    expect(later.stocks[1]!.price).toBeLessThan(before.stocks[1]!.price);
    await Promise.all([pageA, pageB].map(pricesMove));
  });

  test('Stop in one tab freezes both on the same prices', async () => {
    // The Stopped status follows the last tick, so the update before it is the last one.
    const stopped = new Promise<void>((resolve) =>
      observer.on('status', ({ message }) => message === 'Stopped' && resolve()),
    );
    await button(pageA, 'Stop').click();
    await withDeadline(stopped, 15_000, 'the Stopped status');
    await Promise.all(
      [pageA, pageB].map((page) => heading(page).filter({ hasText: 'Stopped' }).waitFor()),
    );
    await bothShow(latest());
    await expect(button(pageA, 'Start').isEnabled()).resolves.toBe(true);
  });

  // How much a buy raises a price is the model's unit tests'.
  test('Buy in tab B (over long-polling) shows the new price in both', async () => {
    const before = latest();
    await pageB.getByRole('button', { name: 'Buy Apple' }).click();
    const after = await updateWhere((update) => update.seq === before.seq + 1);
    expect(after.stocks[0]!.price).toBeGreaterThan(before.stocks[0]!.price);
    // Tab A did nothing: only the broadcast can have carried the new price there.
    await bothShow(after);
  });

  test('no serious or critical accessibility violations (axe-core)', async () => {
    const results = await new AxeBuilder({ page: pageA }).analyze();
    const serious = results.violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.length} nodes)`);
    expect(serious).toEqual([]);
  });

  test('a 375 px wide phone shows the whole table without scrolling sideways', async () => {
    await pageB.setViewportSize({ width: 375, height: 720 });
    const widths = await pageB.evaluate(
      '({ page: document.documentElement.scrollWidth, viewport: window.innerWidth, ' +
        "table: document.querySelector('table').getBoundingClientRect().right <= 375 })",
    );
    expect(widths).toEqual({ page: 375, viewport: 375, table: true });
  });

  test('screenshots, and no console errors, page errors or CSP violations', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await pageA.screenshot({ path: path.join(SCREENSHOTS, 'desktop.png') });
    await pageB.screenshot({ path: path.join(SCREENSHOTS, 'mobile.png') });
    // A CSP violation is reported on the console as an error, so it lands there too.
    expect([...problemsA, ...problemsB]).toEqual([]);
  });
});
