import { type Provider } from '@angular/core';
import {
  ComponentFixtureAutoDetect,
  TestBed,
  fakeAsync,
  flushMicrotasks,
  tick,
} from '@angular/core/testing';

import { SocketService } from '../../client/app/core/socket.service';
import { PRICE_LOCALE } from '../../client/app/core/usd-format';
import {
  BOUGHT_NOTE_MS,
  BUY_INTERVAL_MS,
  StockBoardComponent,
} from '../../client/app/stock-board/stock-board.component';
import {
  HISTORY_LENGTH,
  STATUS,
  type StatusPayload,
  type UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';
import { FakeSocketService, UPDATE, updateAt } from './fake-socket.service';

/** The board on the fake service, rendering on change as the app does. */
function setup(providers: Provider[] = []) {
  const fake = new FakeSocketService();
  TestBed.configureTestingModule({
    imports: [StockBoardComponent],
    providers: [
      { provide: SocketService, useValue: fake },
      { provide: ComponentFixtureAutoDetect, useValue: true },
      ...providers,
    ],
  });
  const fixture = TestBed.createComponent(StockBoardComponent);
  const root = fixture.nativeElement as HTMLElement;

  /** Push server events, then let the component render as it would in the app. */
  async function serverSends(
    ...events: ({ status: StatusPayload } | { update: UpdatePayload })[]
  ): Promise<void> {
    for (const event of events) {
      if ('status' in event) fake.events.status.next(event.status);
      else fake.events.update.next(event.update);
    }
    await fixture.whenStable();
  }

  function button(name: string): HTMLButtonElement {
    const match = Array.from(root.querySelectorAll('button')).find(
      (candidate) =>
        (candidate.getAttribute('aria-label') ?? candidate.textContent.trim()) === name,
    );
    if (!match) throw new Error(`no button named ${name}`);
    return match;
  }

  function row(name: StockName): HTMLTableRowElement {
    const match = Array.from(root.querySelectorAll('tbody tr')).find(
      (candidate) => candidate.querySelector('td')?.textContent.trim() === name,
    );
    if (!match) throw new Error(`no row for ${name}`);
    return match as HTMLTableRowElement;
  }

  /** The cells of a row, by their column. */
  function cells(name: StockName) {
    const [stock, price, change, trend, action] = Array.from(row(name).querySelectorAll('td'));
    return { stock: stock!, price: price!, change: change!, trend: trend!, action: action! };
  }

  function rows(): string[][] {
    return Array.from(root.querySelectorAll('tbody tr')).map((tr) =>
      Array.from(tr.querySelectorAll('td')).map((cell) => cell.textContent.trim()),
    );
  }

  function heading(): string {
    return root.querySelector('h2')?.textContent.trim() ?? '';
  }

  /** What the status line (next to Start / Stop) says. */
  function notes(): string {
    return text(root.querySelector('.board__notes'));
  }

  /** What the polite live region currently holds for a screen reader. */
  function announced(): string {
    const regions = root.querySelectorAll('[aria-live]');
    expect(regions).toHaveLength(1);
    return text(regions[0]!);
  }

  function sparkline(name: StockName): { points: number; label: string } {
    const svg = cells(name).trend.querySelector('svg')!;
    const points = svg.querySelector('polyline')?.getAttribute('points') ?? '';
    return {
      points: points === '' ? 0 : points.split(' ').length,
      label: svg.getAttribute('aria-label') ?? '',
    };
  }

  return {
    fake,
    fixture,
    root,
    serverSends,
    button,
    cells,
    rows,
    heading,
    notes,
    announced,
    sparkline,
  };
}

/** Text content with template line breaks collapsed; a no-break space (de-DE's "14,50 $") stays. */
function text(element: Element | null): string {
  return (element?.textContent ?? '').replace(/[ \t\r\n]+/g, ' ').replace(/^ | $/g, '');
}

/** What a screen reader reads: the text without what is hidden from it. */
function spoken(element: Element): string {
  const copy = element.cloneNode(true) as Element;
  copy.querySelectorAll('[aria-hidden="true"]').forEach((hidden) => hidden.remove());
  return text(copy);
}

describe('StockBoardComponent', () => {
  let board: ReturnType<typeof setup>;

  beforeEach(async () => {
    board = setup();
    await board.fixture.whenStable();
  });

  describe('status and controls', () => {
    it('says it is connecting until the server sends a status', () => {
      expect(board.heading()).toBe('Connecting…');
      expect(board.root.querySelector('table')).toBeNull();
    });

    it('shows the latest status message in the only level-2 heading', async () => {
      await board.serverSends({ status: { message: 'EHLO OK Connected', running: false } });
      expect(board.heading()).toBe('EHLO OK Connected');

      await board.serverSends(
        { status: { message: 'Processing', running: true } },
        {
          update: UPDATE,
        },
      );
      expect(board.heading()).toBe('Processing');
      expect(board.root.querySelectorAll('h2')).toHaveLength(1);
      expect(board.root.querySelectorAll('h1, h3, h4, h5, h6, [role="heading"]')).toHaveLength(0);
    });

    it('disables Start while running and Stop while stopped', async () => {
      await board.serverSends({ status: { message: 'Processing', running: true } });
      expect(board.button('Start').disabled).toBe(true);
      expect(board.button('Stop').disabled).toBe(false);

      await board.serverSends({ update: { ...UPDATE, running: false } });
      expect(board.button('Start').disabled).toBe(false);
      expect(board.button('Stop').disabled).toBe(true);
    });

    it('shows progress while Start awaits its ack, keeping the name "Start"', async () => {
      await board.serverSends({ status: { message: 'Stopped', running: false } });
      const start = board.button('Start');
      expect(start.getAttribute('aria-busy')).toBe('false');
      expect(board.notes()).toBe('');

      start.click();
      await board.fixture.whenStable();
      expect(board.fake.start).toHaveBeenCalledTimes(1);
      expect(board.fake.start).toHaveBeenCalledWith();
      expect(start.getAttribute('aria-busy')).toBe('true');
      expect(start.textContent.trim()).toBe('Start');
      expect(board.notes()).toBe('Starting…');
      expect(start.disabled).toBe(true);
      expect(board.button('Stop').disabled).toBe(true);

      // The ack ends the progress; only the broadcast flips the state.
      board.fake.answerRun({ ok: true, running: true });
      await board.fixture.whenStable();
      expect(start.getAttribute('aria-busy')).toBe('false');
      expect(board.notes()).toBe('');
      expect(start.disabled).toBe(false);

      await board.serverSends({ status: { message: 'Processing', running: true } });
      expect(start.disabled).toBe(true);
      expect(board.button('Stop').disabled).toBe(false);
    });

    it('calls stop() on Stop and shows "Stopping…" until the ack', async () => {
      await board.serverSends({ status: { message: 'Processing', running: true } });

      board.button('Stop').click();
      await board.fixture.whenStable();
      expect(board.notes()).toBe('Stopping…');
      expect(board.button('Stop').getAttribute('aria-busy')).toBe('true');
      expect(board.button('Start').getAttribute('aria-busy')).toBe('false');

      board.fake.answerRun({ ok: true, running: false });
      await board.fixture.whenStable();
      expect(board.fake.stop).toHaveBeenCalledTimes(1);
      expect(board.fake.start).not.toHaveBeenCalled();
      expect(board.notes()).toBe('');
    });

    it('shows and announces the error of an ok: false acknowledgement', async () => {
      await board.serverSends({ status: { message: 'Stopped', running: false } });

      board.button('Start').click();
      board.fake.answerRun({ ok: false, error: 'server did not answer in time' });
      await board.fixture.whenStable();

      expect(text(board.root.querySelector('.board__error'))).toBe('server did not answer in time');
      expect(board.announced()).toBe('server did not answer in time');
      expect(board.button('Start').disabled).toBe(false);
    });

    it('disables every action while disconnected', async () => {
      await board.serverSends({ update: UPDATE });
      board.fake.connection.next('disconnected');
      await board.fixture.whenStable();

      expect(Array.from(board.root.querySelectorAll('button')).every((b) => b.disabled)).toBe(true);
    });
  });

  describe('prices', () => {
    it('renders one row per stock under five column headers', async () => {
      await board.serverSends({ update: UPDATE });

      expect(board.rows()).toEqual([
        ['Apple', '$14.50', '', '', 'Buy'],
        ['Microsoft', '$43.00', '', '', 'Buy'],
        ['Facebook', '$1,234.57', '', '', 'Buy'],
      ]);
      const headers = Array.from(board.root.querySelectorAll('thead th'));
      expect(headers.map((th) => th.getAttribute('scope'))).toEqual([
        'col',
        'col',
        'col',
        'col',
        'col',
      ]);
      expect(headers.map((th) => th.textContent.trim())).toEqual([
        'Stock',
        'Price',
        'Change',
        'Trend',
        'Action',
      ]);
      expect(board.button('Buy Apple').textContent.trim()).toBe('Buy');
    });

    it('follows later updates without any action of its own', async () => {
      await board.serverSends({ update: UPDATE });
      await board.serverSends({
        update: { ...UPDATE, seq: 2, stocks: [{ name: 'Apple', price: 15.95 }] },
      });

      expect(board.rows().map((cells) => cells.slice(0, 2))).toEqual([['Apple', '$15.95']]);
    });

    it('marks each change since the previous update with a direction, arrow and amount', async () => {
      await board.serverSends({ update: updateAt(1) });
      expect(board.cells('Apple').change.textContent.trim()).toBe('');
      expect(board.cells('Apple').price.className).not.toMatch(/flash/);

      await board.serverSends({ update: updateAt(2, { Apple: 14.51, Microsoft: 42.97 }) });

      const apple = board.cells('Apple');
      expect(apple.change.getAttribute('data-direction')).toBe('up');
      expect(spoken(apple.change)).toBe('up +$0.01');
      expect(apple.change.querySelector('[aria-hidden="true"]')?.textContent).toBe('▲');
      expect(apple.change.querySelector('.visually-hidden')?.textContent).toBe('up');
      expect(apple.price.classList).toContain('flash-up-0');

      const microsoft = board.cells('Microsoft');
      expect(microsoft.change.getAttribute('data-direction')).toBe('down');
      expect(spoken(microsoft.change)).toBe('down −$0.03');
      expect(microsoft.change.querySelector('[aria-hidden="true"]')?.textContent).toBe('▼');
      expect(microsoft.price.classList).toContain('flash-down-0');

      const facebook = board.cells('Facebook');
      expect(facebook.change.getAttribute('data-direction')).toBe('flat');
      expect(text(facebook.change)).toBe('$0.00');
      expect(facebook.price.className).not.toMatch(/flash/);

      // The next rise swaps to the twin animation, which restarts the flash.
      await board.serverSends({ update: updateAt(3, { Apple: 14.52, Microsoft: 42.97 }) });
      expect(board.cells('Apple').price.classList).toContain('flash-up-1');
      expect(board.cells('Apple').price.classList).not.toContain('flash-up-0');
      expect(board.cells('Apple').price.classList).toContain('prices__price');
      expect(text(board.cells('Microsoft').change)).toBe('$0.00');
    });

    it("formats prices for the reader's locale", async () => {
      TestBed.resetTestingModule();
      const german = setup([{ provide: PRICE_LOCALE, useValue: 'de-DE' }]);
      await german.serverSends({ update: updateAt(1) }, { update: updateAt(2, { Apple: 14.47 }) });

      expect(german.cells('Apple').price.textContent.trim()).toBe('14,47\u00a0$');
      expect(german.cells('Facebook').price.textContent.trim()).toBe('1.234,57\u00a0$');
      expect(spoken(german.cells('Apple').change)).toBe('down −0,03\u00a0$');
    });
  });

  describe('sparklines', () => {
    const history = (first: number, last: number) => ({
      updates: Array.from({ length: last - first + 1 }, (_, index) =>
        updateAt(first + index, { Apple: 14 + (first + index) / 100 }),
      ),
    });

    it('start from the history and grow with each update', async () => {
      // The server sends the snapshot first, then the history that ends with it.
      await board.serverSends({ update: updateAt(10, { Apple: 14.1 }) });
      expect(board.sparkline('Apple')).toEqual({
        points: 1,
        label: 'Apple, 1 price so far: $14.10',
      });

      board.fake.events.history.next(history(1, 10));
      await board.fixture.whenStable();
      expect(board.sparkline('Apple')).toEqual({
        points: 10,
        label: 'Apple, last 10 prices, from $14.01 to $14.10',
      });

      await board.serverSends({ update: updateAt(11, { Apple: 14.2 }) });
      expect(board.sparkline('Apple')).toEqual({
        points: 11,
        label: 'Apple, last 11 prices, from $14.01 to $14.20',
      });
      expect(board.sparkline('Microsoft').points).toBe(11);
    });

    it('ignore an update that is not newer than the last point', async () => {
      await board.serverSends({ update: updateAt(5) }, { update: updateAt(6) });
      expect(board.sparkline('Apple').points).toBe(2);

      await board.serverSends({ update: updateAt(6, { Apple: 99 }) }, { update: updateAt(3) });
      expect(board.sparkline('Apple').points).toBe(2);
      expect(board.sparkline('Apple').label).toBe('Apple, last 2 prices, from $14.50 to $14.50');

      await board.serverSends({ update: updateAt(7, { Apple: 15 }) });
      expect(board.sparkline('Apple').points).toBe(3);
    });

    it('run on through a recovered reconnect, drawing a replayed point only once', async () => {
      board.fake.events.history.next(history(1, 10));
      await board.serverSends({ update: updateAt(10, { Apple: 14.1 }) });
      board.fake.drop();

      // The server replays what the socket missed; no snapshot and no history this time. The
      // first one repeats a point already drawn, as a packet sent just before the drop may.
      await board.serverSends(
        { update: updateAt(10, { Apple: 14.1 }) },
        { update: updateAt(11, { Apple: 14.11 }) },
        { update: updateAt(12, { Apple: 14.12 }) },
      );
      board.fake.connect('recovered');
      await board.serverSends({ status: { message: STATUS.connected, running: false } });

      expect(board.sparkline('Apple')).toEqual({
        points: 12,
        label: 'Apple, last 12 prices, from $14.01 to $14.12',
      });
      expect(spoken(board.cells('Apple').change)).toBe('up +$0.01');
    });

    it('fill the gap from the greeting after a reconnect that was not recovered', async () => {
      board.fake.events.history.next(history(1, 5));
      await board.serverSends({ update: updateAt(5, { Apple: 14.05 }) });
      board.fake.drop();

      board.fake.connect('not-recovered');
      await board.serverSends(
        { status: { message: STATUS.connected, running: false } },
        { update: updateAt(20, { Apple: 14.2 }) },
      );
      board.fake.events.history.next(history(1, 20));
      await board.fixture.whenStable();

      expect(board.cells('Apple').price.textContent.trim()).toBe('$14.20');
      expect(board.sparkline('Apple')).toEqual({
        points: 20,
        label: 'Apple, last 20 prices, from $14.01 to $14.20',
      });
    });

    it(`keep at most ${HISTORY_LENGTH} points per stock`, async () => {
      board.fake.events.history.next(history(1, HISTORY_LENGTH));
      await board.serverSends(
        { update: updateAt(HISTORY_LENGTH) },
        { update: updateAt(HISTORY_LENGTH + 1, { Apple: 20 }) },
        { update: updateAt(HISTORY_LENGTH + 2, { Apple: 21 }) },
      );

      expect(board.sparkline('Apple')).toEqual({
        points: HISTORY_LENGTH,
        label: `Apple, last ${HISTORY_LENGTH} prices, from $14.03 to $21.00`,
      });
      expect(board.cells('Apple').trend.querySelector('svg')?.getAttribute('role')).toBe('img');
      // Presentation attributes and classes only: the page's CSP refuses inline styles.
      expect(board.root.querySelectorAll('[style]')).toHaveLength(0);
    });
  });

  describe('buying', () => {
    it('calls buy() with the row’s stock and allows one pending buy per row', async () => {
      await board.serverSends({ update: UPDATE });
      const buyApple = board.button('Buy Apple');

      buyApple.click();
      buyApple.click();
      await board.fixture.whenStable();
      expect(board.fake.buy).toHaveBeenCalledTimes(1);
      expect(board.fake.buy).toHaveBeenCalledWith('Apple');
      // Held with aria-disabled, not disabled: the button keeps keyboard focus.
      expect(buyApple.getAttribute('aria-disabled')).toBe('true');
      expect(buyApple.getAttribute('aria-busy')).toBe('true');
      expect(buyApple.disabled).toBe(false);
      expect(board.notes()).toBe('Buying Apple…');
      expect(board.button('Buy Microsoft').getAttribute('aria-disabled')).toBe('false');

      buyApple.click();
      expect(board.fake.buy).toHaveBeenCalledTimes(1);

      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 15.95 } });
      await board.fixture.whenStable();
      expect(buyApple.getAttribute('aria-busy')).toBe('false');
      // The table changes only with the next update broadcast, never from the ack.
      expect(board.rows()[0]!.slice(0, 2)).toEqual(['Apple', '$14.50']);
    });

    it('names the stock in a failed buy, on screen and to screen readers', async () => {
      await board.serverSends({ update: UPDATE });

      board.button('Buy Facebook').click();
      board.fake.answerBuy({ ok: false, error: 'unknown stock' });
      await board.fixture.whenStable();

      expect(text(board.root.querySelector('.board__error'))).toBe(
        'Could not buy Facebook: unknown stock',
      );
      expect(board.announced()).toBe('Could not buy Facebook: unknown stock');
    });

    /**
     * For fakeAsync tests: settle promises and render. The fake emits outside the Angular
     * zone, where rendering is scheduled on a timer that fake time would not run by itself.
     */
    function render(): void {
      flushMicrotasks();
      board.fixture.detectChanges();
    }

    it('shows the price from the ack for a while', fakeAsync(() => {
      board.fake.events.update.next(UPDATE);
      render();

      board.button('Buy Apple').click();
      render();
      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 15.95 } });
      render();
      expect(board.notes()).toBe('Bought Apple at $15.95');
      expect(board.announced()).toBe('Bought Apple at $15.95');

      tick(BOUGHT_NOTE_MS - 1);
      render();
      expect(board.notes()).toBe('Bought Apple at $15.95');
      tick(1);
      render();
      expect(board.notes()).toBe('');
    }));

    it(`waits ${BUY_INTERVAL_MS} ms between two buys of the same stock`, fakeAsync(() => {
      board.fake.events.update.next(UPDATE);
      render();
      const buyApple = board.button('Buy Apple');

      buyApple.click();
      render();
      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 15.95 } });
      render();
      // Answered at once, yet still held: the interval runs from the click.
      expect(buyApple.getAttribute('aria-disabled')).toBe('true');

      tick(BUY_INTERVAL_MS - 1);
      buyApple.click();
      expect(board.fake.buy).toHaveBeenCalledTimes(1);
      // Another stock is not held by Apple's interval.
      board.button('Buy Microsoft').click();
      expect(board.fake.buy).toHaveBeenCalledTimes(2);

      tick(1);
      render();
      expect(buyApple.getAttribute('aria-disabled')).toBe('false');
      buyApple.click();
      expect(board.fake.buy).toHaveBeenCalledTimes(3);
      expect(board.fake.buy.mock.calls).toEqual([['Apple'], ['Microsoft'], ['Apple']]);

      board.fake.answerBuy({ ok: true, stock: { name: 'Microsoft', price: 47.3 } });
      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 17.55 } });
      render();
      expect(board.notes()).toBe('Bought Apple at $17.55');
      tick(BOUGHT_NOTE_MS);
    }));
  });

  describe('the live region', () => {
    it('announces status changes in words, once each', async () => {
      await board.serverSends({ status: { message: STATUS.connected, running: false } });
      expect(board.announced()).toBe('');

      await board.serverSends({ status: { message: STATUS.started, running: true } });
      expect(board.announced()).toBe('Ticker started');

      await board.serverSends({ status: { message: STATUS.tickerLost, running: true } });
      expect(board.announced()).toBe(STATUS.tickerLost);

      await board.serverSends({ status: { message: STATUS.tickerBack, running: true } });
      expect(board.announced()).toBe(STATUS.tickerBack);

      await board.serverSends({ status: { message: STATUS.stopped, running: false } });
      expect(board.announced()).toBe('Ticker stopped');
    });

    it('does not announce price ticks', async () => {
      await board.serverSends({ status: { message: STATUS.started, running: true } });
      const before = board.root.querySelector('[aria-live] p');
      expect(board.announced()).toBe('Ticker started');

      await board.serverSends({ update: updateAt(1) }, { update: updateAt(2, { Apple: 14.49 }) });

      expect(board.announced()).toBe('Ticker started');
      // The same node: nothing in the region changed, so nothing is read again.
      expect(board.root.querySelector('[aria-live] p')).toBe(before);
      // Nothing else on the board is live.
      expect(
        board.root.querySelectorAll('[aria-live], [role="alert"], [role="status"]'),
      ).toHaveLength(1);
    });

    it('announces a lost connection and whether its return missed anything', async () => {
      board.fake.drop();
      await board.fixture.whenStable();
      expect(board.announced()).toBe('Connection lost, reconnecting');

      board.fake.connect('recovered');
      await board.fixture.whenStable();
      expect(board.announced()).toBe('Reconnected — nothing missed');

      board.fake.drop();
      await board.fixture.whenStable();
      expect(board.announced()).toBe('Connection lost, reconnecting');

      board.fake.connect('not-recovered');
      await board.fixture.whenStable();
      expect(board.announced()).toBe('Reconnected — prices refreshed');
    });

    it('does not announce the first connect of the page', async () => {
      board.fake.connection.next('connecting');
      board.fake.connect('first');
      await board.fixture.whenStable();
      expect(board.announced()).toBe('');
    });

    it('announces the first connect if failed attempts were announced', async () => {
      board.fake.drop();
      board.fake.connect('first');
      await board.fixture.whenStable();
      expect(board.announced()).toBe('Connected');
    });
  });
});
