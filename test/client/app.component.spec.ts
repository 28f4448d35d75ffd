import { ComponentFixtureAutoDetect, TestBed } from '@angular/core/testing';

import { AppComponent } from '../../client/app/app.component';
import { SocketService, type ConnectionState } from '../../client/app/core/socket.service';
import { STATUS } from '../../protocol/events';
import { FakeSocketService, updateAt } from './fake-socket.service';

describe('AppComponent', () => {
  let fake: FakeSocketService;
  let root: HTMLElement;
  let settle: () => Promise<void>;

  beforeEach(async () => {
    fake = new FakeSocketService();
    TestBed.configureTestingModule({
      imports: [AppComponent],
      providers: [
        { provide: SocketService, useValue: fake },
        { provide: ComponentFixtureAutoDetect, useValue: true },
      ],
    });
    const fixture = TestBed.createComponent(AppComponent);
    root = fixture.nativeElement as HTMLElement;
    settle = () => fixture.whenStable();
    await settle();
  });

  /** A badge's text and its data-state (which picks the colour of its dot). */
  const badge = (name: 'indicator' | 'ticker') => {
    const element = root.querySelector(`header .${name}`);
    return [element?.textContent.trim(), element?.getAttribute('data-state')];
  };

  async function status(message: string, running: boolean): Promise<void> {
    fake.status.next({ message, running });
    await settle();
  }

  it('puts the name and the live state in the header, and one h2 and one live region on the page', () => {
    expect(root.querySelector('header h1')?.textContent.trim()).toBe('forkcast');
    expect(badge('indicator')).toEqual(['Connected', 'connected']);
    expect(root.querySelectorAll('h2')).toHaveLength(1);
    expect(root.querySelectorAll('[aria-live]')).toHaveLength(1);
  });

  it('shows the connection as it changes, saying after a reconnect whether anything was missed', async () => {
    const shown: [ConnectionState, string, string][] = [
      ['reconnecting', 'Reconnecting…', 'reconnecting'],
      ['recovered', 'Reconnected — nothing missed', 'connected'],
      ['disconnected', 'Disconnected', 'disconnected'],
      ['connecting', 'Connecting…', 'connecting'],
      ['not-recovered', 'Reconnected — prices refreshed', 'connected'],
      ['connected', 'Connected', 'connected'],
    ];
    for (const [state, label, dot] of shown) {
      fake.connection.next(state);
      await settle();
      expect(badge('indicator')).toEqual([label, dot]);
    }
  });

  it('shows the ticker state from statuses and updates', async () => {
    expect(badge('ticker')).toEqual(['Ticker unknown', 'unknown']);
    await status(STATUS.started, true);
    expect(badge('ticker')).toEqual(['Ticker running', 'running']);
    fake.update.next({ ...updateAt(1), running: false });
    await settle();
    expect(badge('ticker')).toEqual(['Ticker stopped', 'stopped']);
  });

  it('says "restarting" from a lost ticker until any later status or update', async () => {
    await status(STATUS.tickerLost, true);
    expect(badge('ticker')).toEqual(['Ticker restarting', 'restarting']);
    await status(STATUS.tickerBack, true);
    expect(badge('ticker')[0]).toBe('Ticker running');

    await status(STATUS.tickerLost, false);
    await status(STATUS.tickerBack, false);
    expect(badge('ticker')[0]).toBe('Ticker stopped');

    await status(STATUS.tickerLost, false);
    fake.update.next({ ...updateAt(2), running: true });
    await settle();
    expect(badge('ticker')[0]).toBe('Ticker running');

    await status(STATUS.tickerLost, true);
    await status(STATUS.stopped, false);
    expect(badge('ticker')[0]).toBe('Ticker stopped');
  });
});
