import {
  NO_SERIES,
  SERIES_LENGTH,
  appendUpdate,
  mergeHistory,
  type PriceSeries,
} from '../../client/app/core/price-series';
import { updateAt } from './fake-socket.service';

const seqs = (series: PriceSeries): number[] => (series.get('Apple') ?? []).map((p) => p.seq);
const range = (first: number, last: number): number[] =>
  Array.from({ length: last - first + 1 }, (_, index) => first + index);
const historyOf = (first: number, last: number) => ({
  updates: range(first, last).map((seq) => updateAt(seq)),
});

describe('price series', () => {
  it('appends newer updates and returns the same map for a stale one', () => {
    const once = appendUpdate(NO_SERIES, updateAt(4, { Apple: 14.4 }));
    const twice = appendUpdate(once, updateAt(5, { Apple: 14.3 }));
    expect(twice.get('Apple')).toEqual([
      { seq: 4, price: 14.4 },
      { seq: 5, price: 14.3 },
    ]);
    expect(appendUpdate(twice, updateAt(5, { Apple: 1 }))).toBe(twice);
    expect(appendUpdate(twice, updateAt(2))).toBe(twice);
  });

  it('appends a replay that overlaps what it holds once per seq', () => {
    let series = mergeHistory(appendUpdate(NO_SERIES, updateAt(5)), historyOf(1, 5));
    for (const seq of [4, 5, 6, 7]) series = appendUpdate(series, updateAt(seq));
    expect(seqs(series)).toEqual(range(1, 7));
  });

  it(`keeps the last ${SERIES_LENGTH} points`, () => {
    let series = NO_SERIES;
    for (const seq of range(1, SERIES_LENGTH + 5)) series = appendUpdate(series, updateAt(seq));
    expect(seqs(series)).toEqual(range(6, SERIES_LENGTH + 5));
  });

  it('merges history with the snapshot and anything newer, once per seq', () => {
    let series = appendUpdate(NO_SERIES, updateAt(10));
    series = appendUpdate(series, updateAt(11));
    series = mergeHistory(series, historyOf(3, 10));
    expect(seqs(series)).toEqual(range(3, 11));
  });

  it('caps merged history too', () => {
    const series = mergeHistory(appendUpdate(NO_SERIES, updateAt(100)), historyOf(1, 100));
    expect(seqs(series)).toEqual(range(100 - SERIES_LENGTH + 1, 100));
  });

  it("takes a restarted server's history over an older, higher-numbered past", () => {
    let series = NO_SERIES;
    for (const seq of range(500, 505)) series = appendUpdate(series, updateAt(seq));
    // The new server's snapshot looks stale here, so it is not in the series...
    series = appendUpdate(series, updateAt(3));
    expect(seqs(series)).toEqual(range(500, 505));
    // ...and its history, which ends with that snapshot, starts the series afresh.
    series = mergeHistory(series, historyOf(1, 3));
    expect(seqs(series)).toEqual([1, 2, 3]);
    expect(seqs(appendUpdate(series, updateAt(4)))).toEqual([1, 2, 3, 4]);
  });
});
