import { appendUpdate, mergeHistory, type Series } from '../../client/app/core/market.store';
import { HISTORY_LENGTH } from '../../protocol/stocks';
import { updateAt } from './fake-socket.service';

const range = (first: number, last: number): number[] =>
  Array.from({ length: last - first + 1 }, (_, index) => first + index);
const seqs = (series: Series): number[] => series.map((update) => update.seq);
const appendAll = (series: Series, ...seqList: number[]): Series =>
  seqList.reduce((kept, seq) => appendUpdate(kept, updateAt(seq)), series);
const historyOf = (first: number, last: number) => ({
  updates: range(first, last).map((seq) => updateAt(seq)),
});

describe('price series', () => {
  it('returns the same array for a stale update', () => {
    const series = appendAll([], 4, 5);
    expect(appendUpdate(series, updateAt(5, { Apple: 1 }))).toBe(series);
    expect(appendUpdate(series, updateAt(2))).toBe(series);
  });

  it(`keeps the last ${HISTORY_LENGTH} updates, appended or merged`, () => {
    expect(seqs(appendAll([], ...range(1, HISTORY_LENGTH + 5)))).toEqual(
      range(6, HISTORY_LENGTH + 5),
    );
    const merged = mergeHistory(appendAll([], 100), historyOf(1, 100));
    expect(seqs(merged)).toEqual(range(100 - HISTORY_LENGTH + 1, 100));
  });

  it('merges history with the snapshot and anything newer, and a replay after it, once per seq', () => {
    const merged = mergeHistory(appendAll([], 10, 11), historyOf(3, 10));
    expect(seqs(merged)).toEqual(range(3, 11));
    expect(seqs(appendAll(merged, 10, 11, 12))).toEqual(range(3, 12));
  });

  it("takes a restarted server's history over an older, higher-numbered past", () => {
    // The new server's snapshot looks stale here, so it is not in the series...
    let series = appendAll([], ...range(500, 505), 3);
    expect(seqs(series)).toEqual(range(500, 505));
    // ...and its history, which ends with that snapshot, starts the series afresh.
    series = mergeHistory(series, historyOf(1, 3));
    expect(seqs(appendAll(series, 4))).toEqual([1, 2, 3, 4]);
  });
});
