import { existsSync } from 'node:fs';

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
 * console errors and page errors in `problems`, except those `expected` matches. */
export async function openPage(
  browser: Browser,
  url: string,
  problems: string[] = [],
  expected = /^$/,
): Promise<Page> {
  const context = await browser.newContext({
    locale: 'en-US',
    viewport: { width: 1024, height: 720 },
  });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' && !expected.test(message.text()))
      problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(url);
  return page;
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

/** Presses Start and waits for the header to say the ticker runs. */
export async function start(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Start', exact: true }).click();
  await page.getByText('Ticker running', { exact: true }).waitFor({ timeout: 15_000 });
}
