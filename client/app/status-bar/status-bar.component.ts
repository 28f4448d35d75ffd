import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';

import { MarketStore, RECONNECT_LABELS, type TickerState } from '../core/market.store';
import type { ConnectionState } from '../core/socket.service';

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  disconnected: 'Disconnected',
};

const TICKER_LABELS: Record<TickerState, string> = {
  unknown: 'Ticker unknown',
  running: 'Ticker running',
  stopped: 'Ticker stopped',
  restarting: 'Ticker restarting',
};

/** The connection and the ticker at a glance. Not a live region: the board announces what
 * matters once, in words, instead of every badge flip. */
@Component({
  selector: 'app-status-bar',
  template: `
    <p class="status-bar">
      <span class="badge indicator" [attr.data-state]="connection()">{{ connectionLabel() }}</span>
      <span class="badge ticker" [attr.data-state]="ticker()">{{ tickerLabel() }}</span>
    </p>
  `,
  styles: `
    .status-bar {
      display: flex;
      flex-wrap: wrap;
      gap: 0.375rem;
      margin: 0;
      font-size: 0.8125rem;
    }

    .badge {
      display: inline-flex;
      align-items: center;
      gap: 0.4em;
      padding: 0.125rem 0.5rem;
      border: 1px solid var(--border);
      border-radius: 999px;
      background: var(--surface);
      color: var(--text);
      white-space: nowrap;
    }

    .badge::before {
      content: '';
      width: 0.6em;
      height: 0.6em;
      border-radius: 50%;
      background: var(--muted);
    }

    [data-state='connected']::before,
    [data-state='running']::before {
      background: var(--ok);
    }

    [data-state='connecting']::before,
    [data-state='reconnecting']::before,
    [data-state='restarting']::before {
      background: var(--warn);
    }

    [data-state='disconnected']::before {
      background: var(--bad);
    }
  `,
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class StatusBarComponent {
  private readonly store = inject(MarketStore);

  protected readonly connection = this.store.connection;
  protected readonly ticker = this.store.ticker;
  /** "Connected" says more after a drop: whether the prices ran on or were fetched anew. */
  protected readonly connectionLabel = computed(() => {
    const reconnect = this.store.reconnect();
    return reconnect ? RECONNECT_LABELS[reconnect] : CONNECTION_LABELS[this.connection()];
  });
  protected readonly tickerLabel = computed(() => TICKER_LABELS[this.ticker()]);
}
