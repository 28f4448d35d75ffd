import { Injectable, computed, inject } from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { merge, scan } from 'rxjs';

import { STATUS, type HistoryPayload, type UpdatePayload } from '../../../protocol/events';
import { HISTORY_LENGTH } from '../../../protocol/stocks';
import { SocketService } from './socket.service';

/** Recent broadcasts, oldest first, at most as many as the server's `history` holds. */
export type Series = readonly UpdatePayload[];

/** What the server has told this tab, as signals, so the header and the board read one state. */
@Injectable({ providedIn: 'root' })
export class MarketStore {
  private readonly socket = inject(SocketService);

  readonly status = toSignal(this.socket.status$);
  readonly update = toSignal(this.socket.update$);
  readonly opening = toSignal(this.socket.opening$);
  readonly connection = toSignal(this.socket.connection$, { requireSync: true });
  readonly connected = computed(() =>
    ['connected', 'recovered', 'not-recovered'].includes(this.connection()),
  );

  /** The last status or update: both say whether the ticker runs. */
  private readonly latest = toSignal(merge(this.socket.status$, this.socket.update$));
  /** null until the server has said. */
  readonly running = computed(() => this.latest()?.running ?? null);
  /** "restarting" from a tickerLost status until the next status or update; "unknown" offline. */
  readonly ticker = computed(() => {
    const latest = this.latest();
    if (!latest || !this.connected()) return 'unknown';
    if ('message' in latest && latest.message === STATUS.tickerLost) return 'restarting';
    return latest.running ? 'running' : 'stopped';
  });

  readonly series = toSignal(
    merge(this.socket.history$, this.socket.update$).pipe(scan(appendUpdate, [] as Series)),
    { initialValue: [] },
  );
}

/** A greeting's `history` replaces the series; a newer `update` is appended (a recovered reconnect
 * replays updates only); an older one leaves the same array, so nothing recomputes. */
export function appendUpdate(series: Series, event: UpdatePayload | HistoryPayload): Series {
  if ('updates' in event) return event.updates.slice(-HISTORY_LENGTH);
  const last = series.at(-1);
  return last && event.seq <= last.seq ? series : [...series, event].slice(-HISTORY_LENGTH);
}
