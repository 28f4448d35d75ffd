/**
 * The product promise, checked in a real browser: two tabs on the built app see the same live
 * prices, and Start, Buy and Stop in one tab show up in the other.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import AxeBuilder from '@axe-core/playwright';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';

import type {
  ClientToServerEvents,
  ServerToClientEvents,
  UpdatePayload,
} from '../../protocol/events';
import { CHROMIUM_ARGS, findChromium } from './chromium';
import { spawnServer, type ServerProcess } from '../helpers/server-process';

const chromePath = findChromium();
const describeInBrowser = chromePath ? describe : describe.skip;
const SCREENSHOTS = path.resolve(__dirname, '..', '..', 'test-results', 'screenshots');
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });

describeInBrowser('two browser tabs on the built app', () => {
  let server: ServerProcess;
  let url: string;
  let browser: Browser;
  let observer: Socket<ServerToClientEvents, ClientToServerEvents>;
  let latest: UpdatePayload | null = null;
  let pageA: Page;
  let pageB: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '300' });
    ({ url } = await server.listening());
    // A plain Socket.IO client watches alongside the tabs: it is the reference for what the
    // server broadcast, independent of the UI under test.
    observer = io(url, { transports: ['websocket'] });
    observer.on('update', (update) => (latest = update));
    browser = await chromium.launch({ executablePath: chromePath!, args: CHROMIUM_ARGS });
    [pageA, pageB] = await Promise.all([openTab(), openTab()]);
  });

  afterAll(async () => {
    observer?.close();
    await browser?.close();
    server.process.kill('SIGTERM');
    await expect(server.exited).resolves.toEqual({ code: 0, signal: null });
  });

  async function openTab(): Promise<Page> {
    // Separate contexts are separate browser profiles: nothing shared but the server.
    const context = await browser.newContext({
      locale: 'en-US',
      viewport: { width: 1024, height: 720 },
    });
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(url);
    return page;
  }

  const heading = (page: Page): Locator => page.getByRole('heading', { level: 2 });
  const price = (page: Page, name: string): Locator =>
    page
      .getByRole('row', { name: new RegExp(name) })
      .getByRole('cell')
      .nth(1);

  async function waitForUpdate(
    predicate: (update: UpdatePayload) => boolean,
  ): Promise<UpdatePayload> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (latest && predicate(latest)) return latest;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no matching update; last was ${JSON.stringify(latest)}`);
  }

  async function expectPrices(page: Page, update: UpdatePayload): Promise<void> {
    for (const stock of update.stocks) {
      await price(page, stock.name)
        .filter({ hasText: usd.format(stock.price) })
        .waitFor({ timeout: 15_000 });
    }
  }

  test('both tabs show a row per stock with the server snapshot in dollars', async () => {
    const snapshot = await waitForUpdate(() => true);
    for (const page of [pageA, pageB]) {
      await expect(page.getByRole('row').count()).resolves.toBe(1 + snapshot.stocks.length);
      await expectPrices(page, snapshot);
      await heading(page).filter({ hasText: 'EHLO OK Connected' }).waitFor();
    }
  });

  test('Start in one tab makes prices tick in both', async () => {
    const before = await waitForUpdate(() => true);
    await pageA.getByRole('button', { name: 'Start', exact: true }).click();
    await heading(pageB).filter({ hasText: 'Processing' }).waitFor();
    // Several ticks, so that the two-decimal display has certainly moved.
    const later = await waitForUpdate((update) => update.seq >= before.seq + 4);
    expect(later.running).toBe(true);
    expect(later.stocks[1]!.price).toBeLessThan(before.stocks[1]!.price);
    await Promise.all([pageA, pageB].map((page) => expectPrices(page, latest!)));
  });

  test('Buy in one tab while running raises that price by exactly 10 % for everyone', async () => {
    const apple = (update: UpdatePayload): number =>
      update.stocks.find((stock) => stock.name === 'Apple')!.price;
    const seen: UpdatePayload[] = [latest!];
    const record = (update: UpdatePayload): number => seen.push(update);
    observer.on('update', record);
    try {
      await pageB.getByRole('button', { name: 'Buy Apple' }).click();
      // Ticks keep coming, so look for the buy's own update: one seq after its predecessor,
      // Apple exactly 10 % up (a tick would have lowered it).
      const bought = (): boolean => {
        for (let i = 1; i < seen.length; i += 1) {
          const [before, after] = [seen[i - 1]!, seen[i]!];
          const grown = apple(before) + apple(before) / 10;
          if (after.seq === before.seq + 1 && apple(after) === grown) return true;
        }
        return false;
      };
      const deadline = Date.now() + 15_000;
      while (!bought()) {
        if (Date.now() > deadline) throw new Error(`no buy update in ${JSON.stringify(seen)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      observer.off('update', record);
    }
  });

  test('Stop in one tab freezes both on the same prices', async () => {
    await pageA.getByRole('button', { name: 'Stop', exact: true }).click();
    await Promise.all(
      [pageA, pageB].map((page) => heading(page).filter({ hasText: 'Stopped' }).waitFor()),
    );
    const frozen = latest!;
    // Nothing should happen now; three tick intervals is long enough to see a tick that should not be.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(latest!.seq).toBe(frozen.seq);
    await Promise.all([pageA, pageB].map((page) => expectPrices(page, frozen)));
    await expect(
      pageA.getByRole('button', { name: 'Start', exact: true }).isEnabled(),
    ).resolves.toBe(true);
  });

  test('Buy in one tab raises that price by 10 % in both, also while stopped', async () => {
    const before = latest!;
    const apple = before.stocks.find((stock) => stock.name === 'Apple')!;
    await pageB.getByRole('button', { name: 'Buy Apple' }).click();
    const after = await waitForUpdate((update) => update.seq === before.seq + 1);
    expect(after.stocks.find((stock) => stock.name === 'Apple')!.price).toBe(
      apple.price + apple.price / 10,
    );
    // Tab A did nothing: only the broadcast can have carried the new price there.
    await Promise.all([pageA, pageB].map((page) => expectPrices(page, after)));
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
        "table: document.querySelector('table').getBoundingClientRect().right })",
    );
    expect(widths).toEqual({
      page: 375,
      viewport: 375,
      table: expect.any(Number) as number,
    });
    expect((widths as { table: number }).table).toBeLessThanOrEqual(375);
  });

  test('screenshots, and no console errors, page errors or CSP violations', async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await pageA.screenshot({ path: path.join(SCREENSHOTS, 'desktop.png') });
    await pageB.screenshot({ path: path.join(SCREENSHOTS, 'mobile.png') });
    // A CSP violation is reported on the console as an error, so it lands in `problems` too.
    expect(problems).toEqual([]);
  });
});
