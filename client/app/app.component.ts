import { ChangeDetectionStrategy, Component, inject } from '@angular/core';

import { MarketStore } from './core/market.store';
import { CONNECTION_LABELS } from './core/socket.service';
import { StockBoardComponent } from './stock-board/stock-board.component';

/** The name, the connection and the ticker at a glance, then the board. */
@Component({
  selector: 'app-root',
  imports: [StockBoardComponent],
  templateUrl: './app.component.html',
  styleUrl: './app.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class AppComponent {
  protected readonly store = inject(MarketStore);
  protected readonly labels = CONNECTION_LABELS;
}
