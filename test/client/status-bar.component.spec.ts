import { ComponentFixtureAutoDetect, TestBed } from '@angular/core/testing';

import { AppComponent } from '../../client/app/app.component';
import { SocketService } from '../../client/app/core/socket.service';
import { StatusBarComponent } from '../../client/app/status-bar/status-bar.component';
import { STATUS, type StatusPayload } from '../../protocol/events';
import { FakeSocketService, updateAt } from './fake-socket.service';

describe('StatusBarComponent', () => {
  let fake: FakeSocketService;
  let root: HTMLElement;
  let settle: () => Promise<void>;

  beforeEach(async () => {
    fake = new FakeSocketService();
    TestBed.configureTestingModule({
      imports: [StatusBarComponent],
      providers: [
        { provide: SocketService, useValue: fake },
        { provide: ComponentFixtureAutoDetect, useValue: true },
      ],
    });
    const fixture = TestBed.createComponent(StatusBarComponent);
    root = fixture.nativeElement as HTMLElement;
    settle = () => fixture.whenStable();
    await settle();
  });

  const connection = (): string => root.querySelector('.indicator')?.textContent.trim() ?? '';
  const ticker = (): string => root.querySelector('.ticker')?.textContent.trim() ?? '';
  const tickerState = (): string | null =>
    root.querySelector('.ticker')?.getAttribute('data-state') ?? null;

  async function status(message: string, running: boolean): Promise<void> {
    fake.events.status.next({ message, running } satisfies StatusPayload);
    await settle();
  }

  it('shows the connection as it changes', async () => {
    expect(connection()).toBe('Connected');
    expect(root.querySelector('.indicator')?.getAttribute('data-state')).toBe('connected');

    for (const [state, label] of [
      ['reconnecting', 'Reconnecting…'],
      ['disconnected', 'Disconnected'],
      ['connecting', 'Connecting…'],
    ] as const) {
      fake.connection.next(state);
      await settle();
      expect(connection()).toBe(label);
      expect(root.querySelector('.indicator')?.getAttribute('data-state')).toBe(state);
    }
  });

  it('says after a reconnect whether anything was missed, in words', async () => {
    fake.drop();
    await settle();
    expect(connection()).toBe('Reconnecting…');

    fake.connect('recovered');
    await settle();
    expect(connection()).toBe('Reconnected — nothing missed');
    expect(root.querySelector('.indicator')?.getAttribute('data-state')).toBe('connected');

    fake.drop();
    await settle();
    expect(connection()).toBe('Reconnecting…');

    fake.connect('not-recovered');
    await settle();
    expect(connection()).toBe('Reconnected — prices refreshed');
    expect(root.querySelector('.indicator')?.getAttribute('data-state')).toBe('connected');
  });

  it('does not depend on which of the two streams reports the connect first', async () => {
    fake.drop();
    fake.connection.next('connected');
    fake.connects.next('recovered');
    await settle();
    expect(connection()).toBe('Reconnected — nothing missed');
  });

  it('shows plain "Connected" for the first connect of the page', async () => {
    fake.connection.next('connecting');
    await settle();
    fake.connect('first');
    await settle();
    expect(connection()).toBe('Connected');
  });

  it('shows the ticker state from statuses and updates', async () => {
    expect(ticker()).toBe('Ticker unknown');

    await status(STATUS.started, true);
    expect(ticker()).toBe('Ticker running');

    fake.events.update.next({ ...updateAt(1), running: false });
    await settle();
    expect(ticker()).toBe('Ticker stopped');
  });

  it('says "restarting" from a lost ticker until it is back', async () => {
    await status(STATUS.started, true);
    await status(STATUS.tickerLost, true);
    expect(ticker()).toBe('Ticker restarting');
    expect(tickerState()).toBe('restarting');

    await status(STATUS.tickerBack, true);
    expect(ticker()).toBe('Ticker running');

    await status(STATUS.tickerLost, false);
    expect(ticker()).toBe('Ticker restarting');
    await status(STATUS.tickerBack, false);
    expect(ticker()).toBe('Ticker stopped');
  });

  it('leaves "restarting" on any later status or update', async () => {
    await status(STATUS.tickerLost, true);
    fake.events.update.next({ ...updateAt(2), running: true });
    await settle();
    expect(ticker()).toBe('Ticker running');

    await status(STATUS.tickerLost, true);
    await status(STATUS.stopped, false);
    expect(ticker()).toBe('Ticker stopped');
  });
});

describe('AppComponent', () => {
  it('puts the name and the live state in the header, and one h2 on the page', async () => {
    TestBed.configureTestingModule({
      imports: [AppComponent],
      providers: [
        { provide: SocketService, useValue: new FakeSocketService() },
        { provide: ComponentFixtureAutoDetect, useValue: true },
      ],
    });
    const fixture = TestBed.createComponent(AppComponent);
    await fixture.whenStable();
    const root = fixture.nativeElement as HTMLElement;

    expect(root.querySelector('header h1')?.textContent.trim()).toBe('forkcast');
    expect(root.querySelector('header .indicator')?.textContent.trim()).toBe('Connected');
    expect(root.querySelectorAll('h2')).toHaveLength(1);
    expect(root.querySelectorAll('[aria-live]')).toHaveLength(1);
  });
});
