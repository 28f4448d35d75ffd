import { ChangeDetectionStrategy, Component, inject } from '@angular/core';

import { CONNECTION_LABELS, MarketStore } from './core/market.store';
import { StockBoardComponent } from './stock-board/stock-board.component';

/** The name, the connection and the ticker at a glance, then the board. The badges are not a
 * live region: the board announces what matters once, in words, instead of every badge flip. */
@Component({
  selector: 'app-root',
  imports: [StockBoardComponent],
  template: `
    <header class="app-header">
      <h1 class="app-header__title">forkcast</h1>
      <p class="status-bar">
        <span
          class="badge indicator"
          [attr.data-state]="store.connected() ? 'connected' : store.connection()"
        >
          {{ labels[store.connection()] }}
        </span>
        <span class="badge ticker" [attr.data-state]="store.ticker()">
          Ticker {{ store.ticker() }}
        </span>
      </p>
      <p class="app-header__tagline">Stock prices pushed live from a forked ticker process</p>
    </header>
    <main>
      <app-stock-board />
    </main>
  `,
  styleUrl: './app.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class AppComponent {
  protected readonly store = inject(MarketStore);
  protected readonly labels = CONNECTION_LABELS;
}
