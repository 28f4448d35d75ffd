import { Injectable, computed, inject } from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { map, merge, scan } from 'rxjs';

import { STATUS, type StatusPayload } from '../../../protocol/events';
import { NO_SERIES, appendUpdate, mergeHistory, type PriceSeries } from './price-series';
import { SocketService, type ConnectKind } from './socket.service';

export type TickerState = 'unknown' | 'running' | 'stopped' | 'restarting';

export type Reconnect = Exclude<ConnectKind, 'first'>;

/** What a reconnect meant for the prices, as both the status bar and the board word it. */
export const RECONNECT_LABELS: Record<Reconnect, string> = {
  recovered: 'Reconnected — nothing missed',
  'not-recovered': 'Reconnected — prices refreshed',
};

/** What the server has told this tab, as signals, so the header and the board read one state. */
@Injectable({ providedIn: 'root' })
export class MarketStore {
  private readonly socket = inject(SocketService);

  readonly status = toSignal(this.socket.status$);
  readonly update = toSignal(this.socket.update$);
  readonly connection = toSignal(this.socket.connection$, { requireSync: true });
  /** How the socket last connected: 'first' until a reconnect. */
  readonly lastConnect = toSignal(this.socket.connects$, { initialValue: 'first' });

  /** While connected again after a drop: whether the server recovered the session; else null. */
  readonly reconnect = computed((): Reconnect | null => {
    const kind = this.lastConnect();
    return this.connection() === 'connected' && kind !== 'first' ? kind : null;
  });

  /** The `running` flag from whichever broadcast said it last; null until the server has. */
  readonly running = toSignal(
    merge(this.socket.status$, this.socket.update$).pipe(map((payload) => payload.running)),
    { initialValue: null },
  );

  /** Like `running`, plus "restarting" from the server saying the ticker was lost until any later
   * status or update. */
  readonly ticker = toSignal(
    merge(
      this.socket.status$.pipe(map(tickerStateOf)),
      this.socket.update$.pipe(map((update) => (update.running ? 'running' : 'stopped'))),
    ),
    { initialValue: 'unknown' },
  );

  /** Recent prices per stock: `history` seeds them, every `update` appends. A recovered reconnect
   * has no `history`; its replayed updates append, duplicates dropped by seq. */
  readonly series = toSignal(
    merge(
      this.socket.history$.pipe(
        map((history) => (series: PriceSeries) => mergeHistory(series, history)),
      ),
      this.socket.update$.pipe(
        map((update) => (series: PriceSeries) => appendUpdate(series, update)),
      ),
    ).pipe(scan((series, apply) => apply(series), NO_SERIES)),
    { initialValue: NO_SERIES },
  );
}

function tickerStateOf(status: StatusPayload): TickerState {
  if (status.message === STATUS.tickerLost) return 'restarting';
  return status.running ? 'running' : 'stopped';
}
