import { ChangeDetectionStrategy, Component } from '@angular/core';

import { StockBoardComponent } from './stock-board/stock-board.component';

@Component({
  selector: 'app-root',
  imports: [StockBoardComponent],
  template: `
    <header class="app-header">
      <h1 class="app-header__title">forkcast</h1>
      <p class="app-header__tagline">Stock prices pushed live from a forked ticker process</p>
    </header>
    <main class="app-main">
      <app-stock-board />
    </main>
  `,
  styles: `
    :host {
      display: block;
      max-width: 40rem;
      margin: 0 auto;
      padding: 1rem;
    }

    .app-header {
      margin-bottom: 1rem;
    }

    .app-header__title {
      margin: 0;
      font-size: 1.75rem;
      letter-spacing: -0.01em;
    }

    .app-header__tagline {
      margin: 0;
      color: var(--muted);
    }
  `,
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class AppComponent {}
