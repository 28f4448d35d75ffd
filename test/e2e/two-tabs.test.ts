/**
 * The product promise, checked in a real browser: two tabs on the built app see the same live
 * prices, and Start, Buy and Stop in one tab show up in the other.
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
import { describeInBrowser, launchBrowser, openPage, priceCell } from './browser';
import { withDeadline } from '../helpers/recorder';
import { spawnServer, type ServerProcess } from '../helpers/server-process';

const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const apple = (update: UpdatePayload): number =>
  update.stocks.find((stock) => stock.name === 'Apple')!.price;

describeInBrowser('two browser tabs on the built app', () => {
  let server: ServerProcess;
  let browser: Browser;
  let observer: Socket<ServerToClientEvents, ClientToServerEvents>;
  let latest: UpdatePayload | null = null;
  let pageA: Page;
  let pageB: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '300' });
    const { url } = await server.listening();
    // A plain Socket.IO client watches alongside the tabs: it is the reference for what the
    // server broadcast, independent of the UI under test.
    observer = io(url, { transports: ['websocket'] });
    observer.on('update', (update) => (latest = update));
    browser = await launchBrowser();
    [pageA, pageB] = await Promise.all([
      openPage(browser, url, problems),
      openPage(browser, url, problems),
    ]);
  });

  afterAll(async () => {
    observer?.close();
    await browser?.close();
    server.process.kill('SIGTERM');
    await expect(server.exited).resolves.toEqual({ code: 0, signal: null });
  });

  const heading = (page: Page): Locator => page.getByRole('heading', { level: 2 });
  const button = (page: Page, name: string): Locator =>
    page.getByRole('button', { name, exact: true });

  /** The observer's latest update if it matches, else the next one that does. */
  function updateWhere(matches: (update: UpdatePayload) => boolean): Promise<UpdatePayload> {
    if (latest && matches(latest)) return Promise.resolve(latest);
    const found = new Promise<UpdatePayload>((resolve) => {
      const check = (update: UpdatePayload): void => {
        if (!matches(update)) return;
        observer.off('update', check);
        resolve(update);
      };
      observer.on('update', check);
    });
    return withDeadline(found, 15_000, 'a matching update');
  }

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

  test('both tabs show a row per stock with the server snapshot in dollars', async () => {
    const snapshot = await updateWhere(() => true);
    for (const page of [pageA, pageB]) {
      await expect(page.getByRole('row').count()).resolves.toBe(1 + snapshot.stocks.length);
      await heading(page).filter({ hasText: 'EHLO OK Connected' }).waitFor();
    }
    await bothShow(snapshot);
  });

  test('Start in one tab makes prices tick in both', async () => {
    const before = await updateWhere(() => true);
    await button(pageA, 'Start').click();
    await heading(pageB).filter({ hasText: 'Processing' }).waitFor();
    // Several ticks, so that the two-decimal display has certainly moved.
    const later = await updateWhere((update) => update.seq >= before.seq + 4);
    expect(later.running).toBe(true);
    expect(later.stocks[1]!.price).toBeLessThan(before.stocks[1]!.price);
    await bothShow(latest!);
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
    await bothShow(latest!);
    await expect(button(pageA, 'Start').isEnabled()).resolves.toBe(true);
  });

  test('Buy in one tab raises that price by 10 % in both', async () => {
    const before = latest!;
    await pageB.getByRole('button', { name: 'Buy Apple' }).click();
    const after = await updateWhere((update) => update.seq === before.seq + 1);
    expect(apple(after)).toBe(apple(before) + apple(before) / 10);
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
    // A CSP violation is reported on the console as an error, so it lands in `problems` too.
    expect(problems).toEqual([]);
  });
});
