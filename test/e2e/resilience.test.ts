/**
 * What a viewer sees when things break: the ticker child killed, the whole server restarted.
 * The page must say so and then recover on its own, without a reload.
 */
import { once } from 'node:events';

import { chromium, type Browser, type Page } from 'playwright-core';

import { CHROMIUM_ARGS, findChromium } from './chromium';
import { LEVEL } from '../helpers/logs';
import { withDeadline } from '../helpers/recorder';
import {
  freshStateFile,
  killServers,
  spawnServer,
  type ServerProcess,
} from '../helpers/server-process';

const chromePath = findChromium();
const describeInBrowser = chromePath ? describe : describe.skip;

describeInBrowser('recovery in the browser', () => {
  const stateFile = freshStateFile();
  let server: ServerProcess;
  let url: string;
  let tickerPid: number;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    server = spawnServer({ TICK_MS: '200', STATE_FILE: stateFile });
    ({ url, tickerPid } = await server.listening());
    browser = await chromium.launch({ executablePath: chromePath!, args: CHROMIUM_ARGS });
    page = await browser.newPage({ locale: 'en-US' });
    page.on('console', (message) => {
      if (message.type() === 'error' && !isExpectedReconnectNoise(message.text())) {
        problems.push(`console: ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(url);
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await page.getByText('Ticker running', { exact: true }).waitFor();
  });

  afterAll(async () => {
    await browser?.close();
    await killServers();
  });

  /** The Apple price cell's text changes: updates are flowing. */
  async function pricesMove(): Promise<void> {
    const cell = page.getByRole('row', { name: /Apple/ }).getByRole('cell').nth(1);
    const before = await cell.textContent();
    const deadline = Date.now() + 10_000;
    while ((await cell.textContent()) === before) {
      if (Date.now() > deadline) throw new Error(`the Apple price stayed at ${String(before)}`);
      await page.waitForTimeout(100);
    }
  }

  test('a killed ticker child shows as restarting, then prices are live again', async () => {
    process.kill(tickerPid, 'SIGKILL');
    await page.getByText('Ticker restarting', { exact: true }).waitFor({ timeout: 15_000 });
    await page.getByText('Ticker running', { exact: true }).waitFor({ timeout: 15_000 });
    await pricesMove();
  });

  test('a restarted server shows as lost, then the page reconnects by itself', async () => {
    const port = new URL(url).port;
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
    await page.getByText(/Reconnecting|Disconnected/).waitFor({ timeout: 15_000 });

    server = spawnServer({ TICK_MS: '200', STATE_FILE: stateFile, PORT: port });
    await server.listening();
    // A new server process has no session to recover: the page says its prices were fetched anew.
    await page
      .getByRole('banner')
      .getByText('Reconnected — prices refreshed', { exact: true })
      .waitFor({ timeout: 15_000 });
    // The state file carried `running` over, so the new server ticks without a Start.
    await page.getByText('Ticker running', { exact: true }).waitFor();
    await pricesMove();
  });

  test('no console errors and no page errors, apart from the dropped connection itself', () => {
    expect(problems).toEqual([]);
  });
});

/** Chromium logs the refused WebSocket while the server is down; that is the scenario, not a bug. */
function isExpectedReconnectNoise(text: string): boolean {
  return /WebSocket connection to .* failed|ERR_CONNECTION_REFUSED/.test(text);
}
