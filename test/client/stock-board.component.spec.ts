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
  type HistoryPayload,
  type StatusPayload,
  type UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';
import { FakeSocketService, UPDATE, updateAt } from './fake-socket.service';

type ServerEvent =
  { status: StatusPayload } | { update: UpdatePayload } | { history: HistoryPayload };

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
  const settle = () => fixture.whenStable();

  /** Push server events, then let the component render as it would in the app. */
  async function serverSends(...events: ServerEvent[]): Promise<void> {
    for (const event of events) {
      if ('status' in event) fake.status.next(event.status);
      else if ('update' in event) fake.update.next(event.update);
      else fake.history.next(event.history);
    }
    await settle();
  }

  function button(name: string): HTMLButtonElement {
    const match = Array.from(root.querySelectorAll('button')).find(
      (candidate) =>
        (candidate.getAttribute('aria-label') ?? candidate.textContent.trim()) === name,
    );
    if (!match) throw new Error(`no button named ${name}`);
    return match;
  }

  /** The cells of a stock's row, by their column. */
  function cells(name: StockName) {
    const row = Array.from(root.querySelectorAll('tbody tr')).find(
      (candidate) => candidate.querySelector('td')?.textContent.trim() === name,
    );
    const [stock, price, change, trend, action] = Array.from(row!.querySelectorAll('td'));
    return { stock: stock!, price: price!, change: change!, trend: trend!, action: action! };
  }

  return {
    fake,
    root,
    settle,
    serverSends,
    button,
    cells,
    rows: () =>
      Array.from(root.querySelectorAll('tbody tr')).map((tr) =>
        Array.from(tr.querySelectorAll('td')).map((cell) => cell.textContent.trim()),
      ),
    heading: () => text(root.querySelector('h2')),
    /** What the status line (next to Start / Stop) says. */
    notes: () => text(root.querySelector('.board__notes')),
    error: () => text(root.querySelector('.board__error')),
    /** What the polite live region currently holds for a screen reader. */
    announced: () => {
      const regions = root.querySelectorAll('[aria-live]');
      expect(regions).toHaveLength(1);
      return text(regions[0]!);
    },
    /** A sparkline's point count and its label. */
    sparkline: (name: StockName) => {
      const svg = cells(name).trend.querySelector('svg')!;
      const points = svg.querySelector('polyline')?.getAttribute('points') ?? '';
      return [points === '' ? 0 : points.split(' ').length, svg.getAttribute('aria-label')];
    },
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

const status = (message: string, running: boolean) => ({ status: { message, running } });

describe('StockBoardComponent', () => {
  let board: ReturnType<typeof setup>;

  beforeEach(async () => {
    board = setup();
    await board.settle();
  });

  describe('status and controls', () => {
    it('shows the latest status message in the only heading, "Connecting…" before any', async () => {
      expect(board.heading()).toBe('Connecting…');
      expect(board.root.querySelector('table')).toBeNull();

      await board.serverSends(status(STATUS.connected, false));
      expect(board.heading()).toBe('EHLO OK Connected');
      await board.serverSends(status(STATUS.started, true), { update: UPDATE });
      expect(board.heading()).toBe('Processing');
      expect(board.root.querySelectorAll('h1, h2, h3, h4, h5, h6, [role="heading"]')).toHaveLength(
        1,
      );
    });

    it('disables Start while running and Stop while stopped', async () => {
      await board.serverSends(status(STATUS.started, true));
      expect([board.button('Start').disabled, board.button('Stop').disabled]).toEqual([
        true,
        false,
      ]);

      await board.serverSends({ update: { ...UPDATE, running: false } });
      expect([board.button('Start').disabled, board.button('Stop').disabled]).toEqual([
        false,
        true,
      ]);
    });

    it.each([
      ['Start', 'Stop', 'Starting…', false],
      ['Stop', 'Start', 'Stopping…', true],
    ] as const)(
      'asks the server on %s and shows progress until the ack, keeping its name',
      async (name, other, progress, running) => {
        await board.serverSends(status('', running));
        const pressed = board.button(name);
        expect(pressed.getAttribute('aria-busy')).toBe('false');
        expect(board.notes()).toBe('');

        pressed.click();
        await board.settle();
        expect(board.fake.start.mock.calls).toEqual(name === 'Start' ? [[]] : []);
        expect(board.fake.stop.mock.calls).toEqual(name === 'Stop' ? [[]] : []);
        expect(pressed.getAttribute('aria-busy')).toBe('true');
        expect(pressed.textContent.trim()).toBe(name);
        expect(board.notes()).toBe(progress);
        expect([pressed.disabled, board.button(other).disabled]).toEqual([true, true]);
        expect(board.button(other).getAttribute('aria-busy')).toBe('false');

        // The ack ends the progress; only the broadcast flips the state.
        board.fake.answerRun({ ok: true, running: !running });
        await board.settle();
        expect(pressed.getAttribute('aria-busy')).toBe('false');
        expect(board.notes()).toBe('');
        expect(pressed.disabled).toBe(false);

        await board.serverSends(status('', !running));
        expect([pressed.disabled, board.button(other).disabled]).toEqual([true, false]);
      },
    );

    it('shows and announces the error of an ok: false acknowledgement', async () => {
      await board.serverSends(status(STATUS.stopped, false));

      board.button('Start').click();
      board.fake.answerRun({ ok: false, error: 'server did not answer in time' });
      await board.settle();

      expect(board.error()).toBe('server did not answer in time');
      expect(board.announced()).toBe('server did not answer in time');
      expect(board.button('Start').disabled).toBe(false);
    });

    it('disables every action while not connected', async () => {
      await board.serverSends({ update: UPDATE });
      board.fake.connection.next('reconnecting');
      await board.settle();

      expect(Array.from(board.root.querySelectorAll('button')).every((b) => b.disabled)).toBe(true);
    });
  });

  describe('prices', () => {
    it('renders one row per stock under five column headers, following later updates', async () => {
      await board.serverSends({ update: UPDATE });

      expect(board.rows()).toEqual([
        ['Apple', '$14.50', '', '', 'Buy'],
        ['Microsoft', '$43.00', '', '', 'Buy'],
        ['Facebook', '$1,234.57', '', '', 'Buy'],
      ]);
      const headers = Array.from(board.root.querySelectorAll('thead th'));
      expect(headers.map((th) => [th.getAttribute('scope'), th.textContent.trim()])).toEqual([
        ['col', 'Stock'],
        ['col', 'Price'],
        ['col', 'Change'],
        ['col', 'Trend'],
        ['col', 'Action'],
      ]);
      expect(board.button('Buy Apple').textContent.trim()).toBe('Buy');

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
      expect(Array.from(board.cells('Apple').price.classList)).toEqual([
        'prices__price',
        'flash-up-1',
      ]);
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
      history: {
        updates: Array.from({ length: last - first + 1 }, (_, index) =>
          updateAt(first + index, { Apple: 14 + (first + index) / 100 }),
        ),
      },
    });

    it('start from the history and grow with each update', async () => {
      // The server sends the snapshot first, then the history that ends with it.
      await board.serverSends({ update: updateAt(10, { Apple: 14.1 }) });
      expect(board.sparkline('Apple')).toEqual([1, 'Apple, 1 price so far: $14.10']);

      await board.serverSends(history(1, 10));
      expect(board.sparkline('Apple')).toEqual([
        10,
        'Apple, last 10 prices, from $14.01 to $14.10',
      ]);

      await board.serverSends({ update: updateAt(11, { Apple: 14.2 }) });
      expect(board.sparkline('Apple')).toEqual([
        11,
        'Apple, last 11 prices, from $14.01 to $14.20',
      ]);
      expect(board.sparkline('Microsoft')[0]).toBe(11);
    });

    it('ignore an update that is not newer than the last point', async () => {
      await board.serverSends({ update: updateAt(5) }, { update: updateAt(6) });
      await board.serverSends({ update: updateAt(6, { Apple: 99 }) }, { update: updateAt(3) });
      expect(board.sparkline('Apple')).toEqual([2, 'Apple, last 2 prices, from $14.50 to $14.50']);
      // Nor is a change shown for the stale update on screen.
      expect(text(board.cells('Apple').change)).toBe('');
    });

    it('run on through a recovered reconnect, drawing a replayed point only once', async () => {
      await board.serverSends(history(1, 10), { update: updateAt(10, { Apple: 14.1 }) });
      board.fake.connection.next('reconnecting');

      // The server replays what the socket missed; no snapshot and no history this time. The
      // first one repeats a point already drawn, as a packet sent just before the drop may.
      await board.serverSends(
        { update: updateAt(10, { Apple: 14.1 }) },
        { update: updateAt(11, { Apple: 14.11 }) },
        { update: updateAt(12, { Apple: 14.12 }) },
      );
      board.fake.connection.next('recovered');
      await board.serverSends(status(STATUS.connected, false));

      expect(board.sparkline('Apple')).toEqual([
        12,
        'Apple, last 12 prices, from $14.01 to $14.12',
      ]);
      expect(spoken(board.cells('Apple').change)).toBe('up +$0.01');
    });

    it('fill the gap from the greeting after a reconnect that was not recovered', async () => {
      await board.serverSends(history(1, 5), { update: updateAt(5, { Apple: 14.05 }) });
      board.fake.connection.next('reconnecting');
      board.fake.connection.next('not-recovered');
      await board.serverSends(
        status(STATUS.connected, false),
        { update: updateAt(20, { Apple: 14.2 }) },
        history(1, 20),
      );

      expect(board.cells('Apple').price.textContent.trim()).toBe('$14.20');
      expect(board.sparkline('Apple')).toEqual([
        20,
        'Apple, last 20 prices, from $14.01 to $14.20',
      ]);
    });

    it(`keep at most ${HISTORY_LENGTH} points per stock`, async () => {
      await board.serverSends(
        history(1, HISTORY_LENGTH),
        { update: updateAt(HISTORY_LENGTH) },
        { update: updateAt(HISTORY_LENGTH + 1, { Apple: 20 }) },
        { update: updateAt(HISTORY_LENGTH + 2, { Apple: 21 }) },
      );

      expect(board.sparkline('Apple')).toEqual([
        HISTORY_LENGTH,
        `Apple, last ${HISTORY_LENGTH} prices, from $14.03 to $21.00`,
      ]);
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
      await board.settle();
      expect(board.fake.buy.mock.calls).toEqual([['Apple']]);
      // Held with aria-disabled, not disabled: the button keeps keyboard focus.
      expect(buyApple.getAttribute('aria-disabled')).toBe('true');
      expect(buyApple.getAttribute('aria-busy')).toBe('true');
      expect(buyApple.disabled).toBe(false);
      expect(board.notes()).toBe('Buying Apple…');
      expect(board.button('Buy Microsoft').getAttribute('aria-disabled')).toBe('false');

      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 15.95 } });
      await board.settle();
      expect(buyApple.getAttribute('aria-busy')).toBe('false');
      // The table changes only with the next update broadcast, never from the ack.
      expect(board.rows()[0]!.slice(0, 2)).toEqual(['Apple', '$14.50']);
    });

    it('names the stock in a failed buy, on screen and to screen readers', async () => {
      await board.serverSends({ update: UPDATE });

      board.button('Buy Facebook').click();
      board.fake.answerBuy({ ok: false, error: 'unknown stock' });
      await board.settle();

      expect(board.error()).toBe('Could not buy Facebook: unknown stock');
      expect(board.announced()).toBe('Could not buy Facebook: unknown stock');
    });

    /**
     * For fakeAsync tests: settle promises and render. The fake emits outside the Angular
     * zone, where rendering is scheduled on a timer that fake time would not run by itself.
     */
    function render(): void {
      flushMicrotasks();
      TestBed.tick();
    }

    it(`waits ${BUY_INTERVAL_MS} ms between two buys of a stock, and shows the ack's price for a while`, fakeAsync(() => {
      board.fake.update.next(UPDATE);
      render();
      const buyApple = board.button('Buy Apple');

      buyApple.click();
      render();
      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 15.95 } });
      render();
      expect(board.notes()).toBe('Bought Apple at $15.95');
      expect(board.announced()).toBe('Bought Apple at $15.95');
      // Answered at once, yet still held: the interval runs from the click.
      expect(buyApple.getAttribute('aria-disabled')).toBe('true');

      tick(BUY_INTERVAL_MS - 1);
      buyApple.click();
      // Another stock is not held by Apple's interval.
      board.button('Buy Microsoft').click();
      expect(board.fake.buy.mock.calls).toEqual([['Apple'], ['Microsoft']]);

      tick(1);
      render();
      expect(buyApple.getAttribute('aria-disabled')).toBe('false');
      buyApple.click();
      expect(board.fake.buy.mock.calls).toEqual([['Apple'], ['Microsoft'], ['Apple']]);

      board.fake.answerBuy({ ok: true, stock: { name: 'Microsoft', price: 47.3 } });
      board.fake.answerBuy({ ok: true, stock: { name: 'Apple', price: 17.55 } });
      render();
      expect(board.notes()).toBe('Bought Apple at $17.55');

      // The first note's timer does not clear the second, which stays its own full time.
      tick(BOUGHT_NOTE_MS - BUY_INTERVAL_MS);
      render();
      expect(board.notes()).toBe('Bought Apple at $17.55');
      tick(BUY_INTERVAL_MS - 1);
      render();
      expect(board.notes()).toBe('Bought Apple at $17.55');
      tick(1);
      render();
      expect(board.notes()).toBe('');
    }));
  });

  describe('the live region', () => {
    it('announces status changes in words, once each, and never price ticks', async () => {
      await board.serverSends(status(STATUS.connected, false));
      expect(board.announced()).toBe('');

      for (const [message, words] of [
        [STATUS.started, 'Ticker started'],
        [STATUS.tickerLost, STATUS.tickerLost],
        [STATUS.tickerBack, STATUS.tickerBack],
        [STATUS.stopped, 'Ticker stopped'],
      ] as const) {
        await board.serverSends(status(message, false));
        expect(board.announced()).toBe(words);
      }

      const before = board.root.querySelector('[aria-live] p');
      await board.serverSends(
        status(STATUS.stopped, false),
        { update: updateAt(1) },
        { update: updateAt(2, { Apple: 14.49 }) },
      );
      // The same node: nothing in the region changed, so nothing is read again.
      expect(board.root.querySelector('[aria-live] p')).toBe(before);
      // Nothing else on the board is live.
      expect(
        board.root.querySelectorAll('[aria-live], [role="alert"], [role="status"]'),
      ).toHaveLength(1);
    });

    it('announces a lost connection and whether its return missed anything', async () => {
      for (const [state, words] of [
        ['connecting', ''],
        // The page's first connect is no news...
        ['connected', ''],
        ['reconnecting', 'Connection lost, reconnecting'],
        ['recovered', 'Reconnected — nothing missed'],
        ['disconnected', 'Disconnected from the server'],
        ['connecting', 'Disconnected from the server'],
        ['not-recovered', 'Reconnected — prices refreshed'],
      ] as const) {
        board.fake.connection.next(state);
        await board.settle();
        expect(board.announced()).toBe(words);
      }
    });

    it('announces the first connect if failed attempts were announced', async () => {
      board.fake.connection.next('reconnecting');
      board.fake.connection.next('connecting');
      board.fake.connection.next('connected');
      await board.settle();
      expect(board.announced()).toBe('Connected');
    });
  });
});
