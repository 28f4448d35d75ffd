import { ComponentFixtureAutoDetect, TestBed, fakeAsync, tick } from '@angular/core/testing';

import { AppComponent } from '../../client/app/app.component';
import { SocketService, WATCH_ONLY } from '../../client/app/core/socket.service';
import {
  ACTIVITY_LENGTH,
  BOUGHT_NOTE_MS,
  BUY_INTERVAL_MS,
} from '../../client/app/stock-board/stock-board.component';
import { STATUS, type StatusPayload, type UpdatePayload } from '../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../protocol/stocks';
import { FakeSocketService, updateAt } from './fake-socket.service';

/** Text content with template line breaks collapsed. */
const text = (element?: Element | null) => (element?.textContent ?? '').replace(/\s+/g, ' ').trim();

/** What a screen reader reads: the text without what is hidden from it. */
function spoken(element: Element): string {
  const copy = element.cloneNode(true) as Element;
  copy.querySelectorAll('[aria-hidden="true"]').forEach((hidden) => hidden.remove());
  return text(copy);
}

const status = (message: string, running: boolean): StatusPayload => ({ message, running });

let fake: FakeSocketService, root: HTMLElement, settle: () => Promise<void>;

async function mount(watchOnly: boolean) {
  fake = new FakeSocketService();
  const fixture = TestBed.configureTestingModule({
    imports: [AppComponent],
    providers: [
      { provide: SocketService, useValue: fake },
      { provide: WATCH_ONLY, useValue: watchOnly },
      { provide: ComponentFixtureAutoDetect, useValue: true },
    ],
  }).createComponent(AppComponent);
  root = fixture.nativeElement as HTMLElement;
  settle = () => fixture.whenStable();
  await settle();
}
beforeEach(() => mount(false));

/** Plays the socket: connection states, statuses and updates, in order; then the page renders. */
async function play(...events: (typeof fake.connection$.value | StatusPayload | UpdatePayload)[]) {
  for (const event of events) {
    if (typeof event === 'string') fake.connection$.next(event);
    else if ('message' in event) fake.status$.next(event);
    else fake.update$.next(event);
  }
  await settle();
}

const badge = (name: 'indicator' | 'ticker') => {
  const element = root.querySelector(`header .${name}`);
  return [text(element), element?.getAttribute('data-state')];
};
const button = (name: string) =>
  Array.from(root.querySelectorAll('button')).find(
    (candidate) => (candidate.getAttribute('aria-label') ?? text(candidate)) === name,
  )!;
const table = () =>
  Array.from(root.querySelectorAll('tbody tr'), (row) => Array.from(row.querySelectorAll('td')));
/** The cells of a stock's row: stock, price, change, trend, action. */
const cells = (name: StockName) => table().find((row) => text(row[0]) === name)!;
const rows = () => table().map((row) => row.map((cell) => spoken(cell)));
const notes = () => text(root.querySelector('.board__notes'));
/** What the one polite live region holds for a screen reader. */
const announced = () => {
  expect(root.querySelectorAll('[aria-live], [role="alert"], [role="status"]')).toHaveLength(1);
  return text(root.querySelector('[aria-live="polite"]'));
};
const activity = () =>
  Array.from(root.querySelectorAll('.activity li'), (li) =>
    text(li).replace(/^\d{1,2}:\d{2}:\d{2} [AP]M /, ''),
  );
const sparkline = (name: StockName) => {
  const svg = cells(name)[3]!.querySelector('svg[role="img"]')!;
  const points = svg.querySelector('polyline')!.getAttribute('points')!.split(' ');
  return [points.length, svg.getAttribute('aria-label')];
};

it('names the app and the board, shows the rows as placeholders and says "Connecting…" until the server says, shows and announces the connection, saying after a reconnect whether anything was missed, and marks the prices stale while not connected: greyed, "as of" the last update, the ticker unknown', async () => {
  const shown = ['header h1', 'h2', '.board__status'].map((at) => text(root.querySelector(at)));
  expect(shown).toEqual(['forkcast', 'Live prices', 'Server: Connecting…']);
  const title = root.querySelector('section')!.getAttribute('aria-labelledby');
  expect(text(root.querySelector(`#${title}`))).toBe('Live prices');
  // A skeleton (a placeholder per price and trend): nothing jumps when the first update comes.
  expect(rows()).toEqual(STOCK_NAMES.map((name) => [name, '', '', '', 'Buy']));
  expect(root.querySelectorAll('td .skeleton')).toHaveLength(2 * STOCK_NAMES.length);
  const table = root.querySelector('table')!;
  const loading = () => [table.getAttribute('aria-busy'), text(table.caption)];
  expect(loading()).toEqual(['true', 'Loading live prices…']);
  // Not before the first update says whether the ticker runs.
  const held = ['Buy Apple', 'Start', 'Stop'].map((name) => button(name).disabled);
  expect(held).toEqual([true, true, true]);
  // The page's first connect is no news.
  expect([...badge('indicator'), announced()]).toEqual(['Connected', 'connected', '']);
  const unreachable = 'Cannot reach the server — retrying';
  await play('unreachable');
  expect([...badge('indicator'), announced()]).toEqual([unreachable, 'unreachable', unreachable]);
  expect(loading()).toEqual(['false', 'No prices yet: the server cannot be reached']);

  await play(status(STATUS.started, true), { ...updateAt(5), running: true });
  const time = root.querySelector('.board__updated time')!;
  // The reader's locale and time zone: a clock time, with the instant in `datetime`.
  const clock = text(time);
  expect(clock).toMatch(/^\d{1,2}:\d{2}:\d{2}\s[AP]M$/);
  expect(time.getAttribute('datetime')).toBe(new Date(updateAt(5).ts).toISOString());
  const [recovered, refreshed] = ['Reconnected — nothing missed', 'Reconnected — prices refreshed'];
  const [lost, gone] = ['Connection lost, reconnecting…', 'Disconnected from the server'];
  const steps = [
    // A connect is news once failed attempts were announced.
    ['connected', 'Connected', 'connected', 'Connected'],
    ['reconnecting', lost, 'reconnecting', lost],
    ['recovered', recovered, 'connected', recovered],
    ['disconnected', gone, 'disconnected', gone],
    ['connecting', 'Connecting…', 'connecting', gone],
    ['connected', 'Connected', 'connected', 'Connected'],
    ['reconnecting', lost, 'reconnecting', lost],
    ['not-recovered', refreshed, 'connected', refreshed],
  ] as const;
  for (const [state, label, dot, words] of steps) {
    await play(state);
    expect([...badge('indicator'), announced()]).toEqual([label, dot, words]);
    const stale = dot !== 'connected';
    const shown = ['.board__updated', '.board__status'].map((at) => text(root.querySelector(at)));
    expect([table.classList.contains('prices--stale'), ...shown, badge('ticker')[1]]).toEqual([
      stale,
      `${stale ? 'Not live: prices as of' : 'Last update'} ${clock} · seq 5`,
      `${stale ? 'Last heard from the server:' : 'Server:'} Processing`,
      stale ? 'unknown' : 'running',
    ]);
  }
  // Logged too, newest first, but not the unread "Connecting…".
  expect(activity()).toEqual([refreshed, lost, 'Connected', gone, recovered]);
});

it(`shows the ticker and the latest status, announcing each new status in words, never a tick, and lists the last ${ACTIVITY_LENGTH} events with their time, newest first, with buys from any tab`, async () => {
  expect(badge('ticker')).toEqual(['Ticker unknown', 'unknown']);
  const steps: [StatusPayload | UpdatePayload, string, string][] = [
    // The greeting is no news: the connection is announced already.
    [status(STATUS.connected, false), 'stopped', ''],
    [status(STATUS.started, true), 'running', 'Ticker started'],
    [{ ...updateAt(1), running: false }, 'stopped', 'Ticker started'],
    // "restarting" from a lost ticker until the next status or update.
    [status(STATUS.tickerLost, true), 'restarting', STATUS.tickerLost],
    [status(STATUS.tickerBack, true), 'running', STATUS.tickerBack],
    [status(STATUS.tickerLost, false), 'restarting', STATUS.tickerLost],
    [status(STATUS.tickerBack, false), 'stopped', STATUS.tickerBack],
    [status(STATUS.tickerLost, false), 'restarting', STATUS.tickerLost],
    [{ ...updateAt(2), running: true }, 'running', STATUS.tickerLost],
    [status(STATUS.stopped, false), 'stopped', 'Ticker stopped'],
  ];
  for (const [event, ticker, words] of steps) {
    await play(event);
    expect([...badge('ticker'), announced()]).toEqual([`Ticker ${ticker}`, ticker, words]);
    if ('message' in event)
      expect(text(root.querySelector('.board__status'))).toBe(`Server: ${event.message}`);
  }

  const before = root.querySelector('[aria-live] p');
  // Ticks only lower prices: a rise (+10 %) is a buy from any tab; across a seq gap, no compare.
  await play(
    status(STATUS.stopped, false),
    updateAt(3, { Apple: 14.5 * 1.1 }),
    updateAt(4, { Apple: 14.5 * 1.1 * 0.999 }),
    updateAt(6, { Apple: 20 }),
  );
  // The same node: nothing in the region changed, so nothing is read again.
  expect(root.querySelector('[aria-live] p')).toBe(before);
  const [lost, back] = [STATUS.tickerLost, STATUS.tickerBack];
  expect(activity()).toEqual(['Apple bought, +10%', 'Ticker stopped', lost, back, lost]);
});

it.each([
  ['Start', 'Stop', 'Starting…', false, [1, 0], 'server did not answer in time'],
  ['Stop', 'Start', 'Stopping…', true, [0, 1], ''],
] as const)(
  'offers %s in its state only, asks the server and shows progress until the ack, and any error',
  async (name, other, progress, running, calls, error) => {
    await play(status('', running), { ...updateAt(1), running });
    const pressed = button(name);
    const seen = () => [
      pressed.getAttribute('aria-busy'),
      pressed.disabled,
      button(other).disabled,
      notes(),
    ];
    expect(seen()).toEqual(['false', false, true, '']);

    // jsdom's click() does not focus; in a browser the pressed button keeps focus once disabled.
    pressed.focus();
    pressed.click();
    await settle();
    expect([fake.start.mock.calls.length, fake.stop.mock.calls.length]).toEqual(calls);
    expect(seen()).toEqual(['true', true, true, progress]);
    expect([text(pressed), button(other).getAttribute('aria-busy')]).toEqual([name, 'false']);

    // Only the broadcast flips the state, not the ack.
    fake.answer(error ? { ok: false, error } : { ok: true, running: !running });
    await settle();
    expect(seen()).toEqual(['false', false, true, '']);
    expect([text(root.querySelector('.board__error')), announced()]).toEqual([error, error]);
    await play(status('', !running));
    expect(seen()).toEqual(['false', true, false, '']);
    // After an acknowledged Start or Stop, focus moves to the button that is now enabled.
    expect(document.activeElement === button(other)).toBe(!error);
    // Back again: the next run clears the error, and focus the user moved on is left alone.
    button(other).click();
    fake.answer({ ok: true, running });
    await settle();
    button('Buy Apple').focus();
    await play(status('', running));
    expect(root.querySelector('.board__error')).toBeNull();
    expect(document.activeElement).toBe(button('Buy Apple'));
    // Nothing while not connected.
    await play('reconnecting');
    expect(Array.from(root.querySelectorAll('button')).every((b) => b.disabled)).toBe(true);
  },
);

it('renders a row per stock under five column headers and follows each update: its change since the ticker was started, with a direction, arrow, amount and percentage, a flash for the change from the last update, and its recent prices from the history', async () => {
  const apple = (seq: number, prices = {}) => updateAt(seq, { Apple: 14 + seq / 100, ...prices });
  await play(apple(10));
  // Without the opening prices there is nothing to count the change from.
  const prices = ['$14.10', '$43.00', '$1,234.57'];
  expect(rows()).toEqual(STOCK_NAMES.map((name, i) => [name, prices[i], '', '', 'Buy']));
  expect(root.querySelectorAll('.skeleton')).toHaveLength(0);
  const headers = () => Array.from(root.querySelectorAll('thead th'), (th) => text(th));
  expect(headers()).toEqual(['Stock', 'Price', 'Change', 'Trend', 'Action']);
  expect(root.querySelectorAll('thead th[scope="col"]')).toHaveLength(5);
  // The board's title is the page's only heading under the name.
  expect(root.querySelectorAll('h2, h3, h4, h5, h6, [role="heading"]')).toHaveLength(1);
  // A lone price is all the history there is: drawn flat across.
  expect(sparkline('Apple')).toEqual([2, 'Apple, 1 price so far: $14.10']);

  const { stocks, seq, ts } = apple(10);
  fake.opening$.next({ stocks, seq, ts });
  // The server sends the snapshot first, then the history that ends with it.
  fake.history$.next({ updates: Array.from({ length: 10 }, (_, index) => apple(index + 1)) });
  await play(apple(11, { Microsoft: 42.97 }));
  const since = new Intl.DateTimeFormat('en-US', { timeStyle: 'medium' }).format(ts);
  const opened = root.querySelector('thead time')!.getAttribute('datetime');
  expect([headers()[2], opened]).toEqual([`Change since ${since}`, new Date(ts).toISOString()]);
  const described = 'Apple, last 11 prices, from $14.01 to $14.11, low $14.01, high $14.11';
  expect(sparkline('Apple')).toEqual([11, described]);
  // The span of the history in the header; each row's own low and high on hover or focus.
  expect(headers()[3]).toBe('Trend last 10 s');
  const trend = cells('Microsoft')[3]!;
  const svg = trend.querySelector('svg')!;
  const range = text(trend.querySelector('.sparkline__range'));
  expect([svg.getAttribute('tabindex'), range]).toEqual(['0', '$42.97 – $43.00']);
  // In the pad, a fall drawn down to the end dot; a range under 1 % drawn as 1 % (mid-height).
  const line = trend.querySelector('polyline')!.getAttribute('points')!.split(' ');
  const dot = ['cx', 'cy'].map((at) => trend.querySelector('circle')?.getAttribute(at));
  expect([line[0], line.at(-1), ...dot]).toEqual(['2.5,9.5', '61.5,10.5', '61.5', '10.5']);
  expect(svg.getAttribute('data-trend')).toBe('down');
  // Presentation attributes and classes only: the page's CSP refuses inline styles.
  expect(root.querySelectorAll('[style]')).toHaveLength(0);
  const change = (name: StockName) => {
    const [, price, cell] = cells(name);
    const arrow = cell!.querySelector('[aria-hidden="true"]');
    return [cell!.getAttribute('data-direction'), spoken(cell!), text(arrow), price!.className];
  };
  expect(STOCK_NAMES.map(change)).toEqual([
    ['up', 'up +$0.01 (+0.07%)', '▲', 'prices__price flash-up-1'],
    ['down', 'down −$0.03 (−0.07%)', '▼', 'prices__price flash-down-1'],
    ['flat', '$0.00 (0%)', '', 'prices__price'],
  ]);

  // Change from the opening, flash from the last update; the twin animation restarts a new rise.
  await play(apple(12, { Microsoft: 42.97 }));
  expect(change('Apple')).toEqual(['up', 'up +$0.02 (+0.14%)', '▲', 'prices__price flash-up-0']);
  expect(change('Microsoft')).toEqual(['down', 'down −$0.03 (−0.07%)', '▼', 'prices__price']);

  // A stale update is shown, but draws no point and does not flash.
  await play(updateAt(3, { Apple: 99 }));
  expect(sparkline('Apple')[0]).toBe(12);
  expect(change('Apple')).toEqual(['up', 'up +$84.90 (+602.13%)', '▲', 'prices__price']);
  await play({ ...updateAt(13), stocks: [{ name: 'Apple', price: 15.95 }] });
  expect(rows().map((row) => row.slice(0, 2))).toEqual([['Apple', '$15.95']]);
  // From two minutes on, the span reads in minutes.
  for (const [seconds, span] of Object.entries({ 119: '119 s', 300: '5 min' })) {
    fake.history$.next({ updates: [updateAt(1), updateAt(1 + Number(seconds))] });
    await settle();
    expect(headers()[3]).toBe(`Trend last ${span}`);
  }
});

it(`buys the row’s stock, holding it ${BUY_INTERVAL_MS} ms and showing the ack's price for a while or its error, never changing the table from the ack`, fakeAsync(() => {
  // The fake emits outside the zone, where rendering waits on a timer fake time would not run.
  const render = (ms = 0): void => {
    tick(ms);
    TestBed.tick();
  };
  fake.update$.next(updateAt(1));
  render();
  const buyApple = button('Buy Apple');
  buyApple.click();
  buyApple.click();
  render();
  expect(fake.buy.mock.calls).toEqual([['Apple']]);
  // Busy, and held with aria-disabled, not disabled: the button keeps keyboard focus.
  const held = () => ['aria-busy', 'aria-disabled'].map((name) => buyApple.getAttribute(name));
  expect([...held(), buyApple.disabled]).toEqual(['true', 'true', false]);
  expect(notes()).toBe('Buying Apple…');

  fake.answer({ ok: true, stock: { name: 'Apple', price: 15.95 } });
  render();
  expect([notes(), announced()]).toEqual(['Bought Apple at $15.95', 'Bought Apple at $15.95']);
  expect(rows()[0]!.slice(0, 2)).toEqual(['Apple', '$14.50']);
  // Answered at once, yet still held: the interval runs from the click.
  expect(held()).toEqual(['false', 'true']);

  tick(BUY_INTERVAL_MS - 1);
  buyApple.click();
  // Another stock is not held by Apple's interval.
  button('Buy Microsoft').click();
  expect(fake.buy.mock.calls).toEqual([['Apple'], ['Microsoft']]);
  render(1);
  expect(held()).toEqual(['false', 'false']);
  buyApple.click();
  expect(fake.buy.mock.calls).toEqual([['Apple'], ['Microsoft'], ['Apple']]);

  fake.answer({ ok: false, error: 'unknown stock' });
  render();
  const failed = 'Could not buy Microsoft: unknown stock';
  expect([text(root.querySelector('.board__error')), announced()]).toEqual([failed, failed]);
  fake.answer({ ok: true, stock: { name: 'Apple', price: 17.55 } });
  render();
  // The first note's timer does not clear the second, which stays its own full time.
  render(BOUGHT_NOTE_MS - 1);
  expect(notes()).toBe('Bought Apple at $17.55');
  render(1);
  expect(notes()).toBe('');
  // The next buy clears the last error, and holds its stock until the ack, however late.
  buyApple.click();
  render(BUY_INTERVAL_MS);
  buyApple.click();
  expect([fake.buy.mock.calls.length, root.querySelector('.board__error')]).toEqual([4, null]);
}));

// Held with `disabled`, so no click reaches the page's handlers.
it('a watch-only page says so and holds Start, Stop and Buy, saying why', async () => {
  TestBed.resetTestingModule();
  await mount(true);
  await play(status(STATUS.connected, false), updateAt(1));
  const why = "Watch only: starting, stopping and buying need this server's control token.";
  expect(text(root.querySelector('.board__watch'))).toBe(why);
  const held = ['Start', 'Stop', 'Buy', 'Buy', 'Buy'].map((name) => [name, true, 'board-watch']);
  const seen = (b: HTMLButtonElement) => [text(b), b.disabled, b.getAttribute('aria-describedby')];
  expect(Array.from(root.querySelectorAll('button'), seen)).toEqual(held);
});
