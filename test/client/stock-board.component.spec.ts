import { ComponentFixtureAutoDetect, TestBed, type ComponentFixture } from '@angular/core/testing';
import { BehaviorSubject, Subject, type Observable } from 'rxjs';

import {
  SocketService,
  type ConnectionState,
  type ServerPayloads,
} from '../../client/app/core/socket.service';
import { StockBoardComponent } from '../../client/app/stock-board/stock-board.component';
import type {
  BuyAck,
  HistoryPayload,
  RunAck,
  ServerToClientEvents,
  StatusPayload,
  UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

/** A settle-it-yourself promise, so a test decides when the "server" answers. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/**
 * The service's public surface over Subjects: the test plays the server by pushing events,
 * and records the operations the component asks for.
 */
class FakeSocketService implements Pick<SocketService, keyof SocketService> {
  readonly events: { [E in keyof ServerToClientEvents]: Subject<ServerPayloads[E]> } = {
    status: new Subject<StatusPayload>(),
    update: new Subject<UpdatePayload>(),
    history: new Subject<HistoryPayload>(),
  };
  readonly connection = new BehaviorSubject<ConnectionState>('connected');

  readonly status$ = this.on('status');
  readonly update$ = this.on('update');
  readonly history$ = this.on('history');
  readonly connection$ = this.connection.asObservable();

  runAck = deferred<RunAck>();
  buyAck = deferred<BuyAck>();
  readonly start = jest.fn((): Promise<RunAck> => this.runAck.promise);
  readonly stop = jest.fn((): Promise<RunAck> => this.runAck.promise);
  readonly buy = jest.fn((_name: StockName): Promise<BuyAck> => this.buyAck.promise);

  on<E extends keyof ServerToClientEvents>(event: E): Observable<ServerPayloads[E]> {
    return this.events[event].asObservable();
  }
}

const UPDATE: UpdatePayload = {
  stocks: [
    { name: 'Apple', price: 14.5 },
    { name: 'Microsoft', price: 43 },
    { name: 'Facebook', price: 1234.5678 },
  ],
  running: false,
  seq: 1,
  ts: 1_700_000_000_000,
};

describe('StockBoardComponent', () => {
  let fake: FakeSocketService;
  let fixture: ComponentFixture<StockBoardComponent>;
  let root: HTMLElement;

  beforeEach(async () => {
    fake = new FakeSocketService();
    TestBed.configureTestingModule({
      imports: [StockBoardComponent],
      providers: [
        { provide: SocketService, useValue: fake },
        // Render on change as the app does, instead of calling detectChanges() by hand.
        { provide: ComponentFixtureAutoDetect, useValue: true },
      ],
    });
    fixture = TestBed.createComponent(StockBoardComponent);
    root = fixture.nativeElement as HTMLElement;
    await fixture.whenStable();
  });

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

  function rows(): string[][] {
    return Array.from(root.querySelectorAll('tbody tr')).map((row) =>
      Array.from(row.querySelectorAll('td')).map((cell) => cell.textContent.trim()),
    );
  }

  function heading(): string {
    return root.querySelector('h2')?.textContent.trim() ?? '';
  }

  it('says it is connecting until the server sends a status', () => {
    expect(heading()).toBe('Connecting…');
    expect(root.querySelector('table')).toBeNull();
  });

  it('shows the latest status message in the heading', async () => {
    await serverSends({ status: { message: 'EHLO OK Connected', running: false } });
    expect(heading()).toBe('EHLO OK Connected');

    await serverSends({ status: { message: 'Processing', running: true } });
    expect(heading()).toBe('Processing');
  });

  it('renders one row per stock with US-dollar prices from an update', async () => {
    await serverSends({ update: UPDATE });

    expect(rows()).toEqual([
      ['Apple', '$14.50', 'Buy'],
      ['Microsoft', '$43.00', 'Buy'],
      ['Facebook', '$1,234.57', 'Buy'],
    ]);
    const headers = Array.from(root.querySelectorAll('thead th'));
    expect(headers.map((th) => th.getAttribute('scope'))).toEqual(['col', 'col', 'col']);
    expect(headers.map((th) => th.textContent.trim())).toEqual(['Stock', 'Price', 'Action']);
  });

  it('follows later updates without any action of its own', async () => {
    await serverSends({ update: UPDATE });
    await serverSends({
      update: { ...UPDATE, seq: 2, stocks: [{ name: 'Apple', price: 15.95 }] },
    });

    expect(rows()).toEqual([['Apple', '$15.95', 'Buy']]);
  });

  it('shows the connection and ticker state', async () => {
    await serverSends({ status: { message: 'Processing', running: true } });
    expect(root.querySelector('.indicator')?.textContent.trim()).toBe('Connected');
    expect(root.querySelector('.ticker')?.textContent.trim()).toBe('Ticker running');

    fake.connection.next('reconnecting');
    await serverSends({ update: { ...UPDATE, running: false } });
    expect(root.querySelector('.indicator')?.textContent.trim()).toBe('Reconnecting…');
    expect(root.querySelector('.ticker')?.textContent.trim()).toBe('Ticker stopped');
  });

  it('disables Start while running and Stop while stopped', async () => {
    await serverSends({ status: { message: 'Processing', running: true } });
    expect(button('Start').disabled).toBe(true);
    expect(button('Stop').disabled).toBe(false);

    await serverSends({ update: { ...UPDATE, running: false } });
    expect(button('Start').disabled).toBe(false);
    expect(button('Stop').disabled).toBe(true);
  });

  it('calls start() on Start and keeps both buttons disabled until the ack', async () => {
    await serverSends({ status: { message: 'Stopped', running: false } });

    button('Start').click();
    await fixture.whenStable();
    expect(fake.start).toHaveBeenCalledTimes(1);
    expect(fake.start).toHaveBeenCalledWith();
    expect(button('Start').disabled).toBe(true);
    expect(button('Stop').disabled).toBe(true);

    // The ack alone does not flip the state; the broadcast does.
    fake.runAck.resolve({ ok: true, running: true });
    await serverSends({ status: { message: 'Processing', running: true } });
    expect(button('Start').disabled).toBe(true);
    expect(button('Stop').disabled).toBe(false);
  });

  it('calls stop() on Stop', async () => {
    await serverSends({ status: { message: 'Processing', running: true } });

    button('Stop').click();
    fake.runAck.resolve({ ok: true, running: false });
    await fixture.whenStable();

    expect(fake.stop).toHaveBeenCalledTimes(1);
    expect(fake.start).not.toHaveBeenCalled();
  });

  it('calls buy() with the row’s stock and allows one pending buy per row', async () => {
    await serverSends({ update: UPDATE });
    const buyApple = button('Buy Apple');

    buyApple.click();
    await fixture.whenStable();
    expect(fake.buy).toHaveBeenCalledWith('Apple');
    expect(buyApple.disabled).toBe(true);
    expect(buyApple.textContent.trim()).toBe('Buying…');
    expect(button('Buy Microsoft').disabled).toBe(false);

    buyApple.click();
    expect(fake.buy).toHaveBeenCalledTimes(1);

    fake.buyAck.resolve({ ok: true, stock: { name: 'Apple', price: 15.95 } });
    await fixture.whenStable();
    expect(buyApple.disabled).toBe(false);
    // Prices change only with the next update broadcast, never from the ack.
    expect(rows()[0]).toEqual(['Apple', '$14.50', 'Buy']);
  });

  it('shows the error of an ok: false acknowledgement', async () => {
    await serverSends({ status: { message: 'Stopped', running: false } });

    button('Start').click();
    fake.runAck.resolve({ ok: false, error: 'server did not answer in time' });
    await fixture.whenStable();

    const alert = root.querySelector('[role="alert"]');
    expect(alert?.textContent.trim()).toBe('server did not answer in time');
    expect(button('Start').disabled).toBe(false);
  });

  it('names the stock in a failed buy', async () => {
    await serverSends({ update: UPDATE });

    button('Buy Facebook').click();
    fake.buyAck.resolve({ ok: false, error: 'unknown stock' });
    await fixture.whenStable();

    expect(root.querySelector('[role="alert"]')?.textContent.trim()).toBe(
      'Could not buy Facebook: unknown stock',
    );
  });

  it('disables every action while disconnected', async () => {
    await serverSends({ update: UPDATE });
    fake.connection.next('disconnected');
    await fixture.whenStable();

    expect(Array.from(root.querySelectorAll('button')).every((b) => b.disabled)).toBe(true);
  });
});
