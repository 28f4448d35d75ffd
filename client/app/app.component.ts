import { ChangeDetectionStrategy, Component } from '@angular/core';

import { StatusBarComponent } from './status-bar/status-bar.component';
import { StockBoardComponent } from './stock-board/stock-board.component';

@Component({
  selector: 'app-root',
  imports: [StatusBarComponent, StockBoardComponent],
  template: `
    <header class="app-header">
      <h1 class="app-header__title">forkcast</h1>
      <app-status-bar />
      <p class="app-header__tagline">Stock prices pushed live from a forked ticker process</p>
    </header>
    <main>
      <app-stock-board />
    </main>
  `,
  styles: `
    :host {
      display: block;
      max-width: 44rem;
      margin: 0 auto;
      padding: var(--gutter);
    }

    .app-header {
      display: flex;
      flex-wrap: wrap;
      align-items: center;
      justify-content: space-between;
      gap: 0.25rem 1rem;
      margin-bottom: 1rem;
    }

    .app-header__title {
      margin: 0;
      font-size: 1.75rem;
      letter-spacing: -0.01em;
    }

    .app-header__tagline {
      flex-basis: 100%;
      margin: 0;
      color: var(--muted);
    }
  `,
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class AppComponent {}
