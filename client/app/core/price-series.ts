import { HISTORY_LENGTH, type HistoryPayload, type UpdatePayload } from '../../../protocol/events';
import type { StockName } from '../../../protocol/stocks';

/** Points kept per stock: as many as the server's `history` holds, so both agree on "recent". */
export const SERIES_LENGTH = HISTORY_LENGTH;

export interface PricePoint {
  readonly seq: number;
  readonly price: number;
}

/** Each stock's recent prices, oldest first, at most SERIES_LENGTH. */
export type PriceSeries = ReadonlyMap<StockName, readonly PricePoint[]>;

export const NO_SERIES: PriceSeries = new Map();

/** Adds one broadcast, ignoring one not newer than a stock's last point. Returns the same map when
 * nothing changed, so signals downstream do not recompute. */
export function appendUpdate(series: PriceSeries, update: UpdatePayload): PriceSeries {
  let next: Map<StockName, readonly PricePoint[]> | null = null;
  for (const { name, price } of update.stocks) {
    const points = series.get(name) ?? [];
    const last = points.at(-1);
    if (last && update.seq <= last.seq) continue;
    next ??= new Map(series);
    next.set(name, [...points, { seq: update.seq, price }].slice(-SERIES_LENGTH));
  }
  return next ?? series;
}

/** Seeds the series from `history`, which follows a new socket's snapshot `update` (so that
 * snapshot is usually here already, and is also the history's last entry). */
export function mergeHistory(series: PriceSeries, history: HistoryPayload): PriceSeries {
  const past = new Map<StockName, PricePoint[]>();
  for (const update of history.updates) {
    for (const { name, price } of update.stocks) {
      const points = past.get(name) ?? [];
      points.push({ seq: update.seq, price });
      past.set(name, points);
    }
  }

  const next = new Map(series);
  for (const [name, points] of past) {
    const known = series.get(name) ?? [];
    const snapshot = points.reduce((max, point) => Math.max(max, point.seq), -Infinity);
    // Without the history's last snapshot, the server's seq started over (state lost): its
    // history replaces our points, or every later update would look stale.
    const sameTimeline = known.some((point) => point.seq === snapshot);
    const merged = sameTimeline ? [...known, ...points] : points;
    next.set(name, bySeq(merged).slice(-SERIES_LENGTH));
  }
  return next;
}

/** Sorted by seq, one point per seq (the snapshot arrives both as `update` and in `history`). */
function bySeq(points: readonly PricePoint[]): PricePoint[] {
  const unique = new Map(points.map((point) => [point.seq, point]));
  return [...unique.values()].sort((a, b) => a.seq - b.seq);
}
