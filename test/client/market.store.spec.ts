import { appendUpdate, type Series } from '../../client/app/core/market.store';
import { HISTORY_LENGTH } from '../../protocol/stocks';
import { updateAt } from './fake-socket.service';

const range = (first: number, last: number): number[] =>
  Array.from({ length: last - first + 1 }, (_, index) => first + index);
const seqs = (series: Series): number[] => series.map((update) => update.seq);
const appendAll = (series: Series, ...seqList: number[]): Series =>
  seqList.reduce((kept, seq) => appendUpdate(kept, updateAt(seq)), series);

it(`a price series keeps the last ${HISTORY_LENGTH} updates and is the same array after a stale one`, () => {
  const last = HISTORY_LENGTH + 5;
  const series = appendAll([], ...range(1, last));
  expect(seqs(series)).toEqual(range(6, last));
  expect(appendUpdate(series, updateAt(last, { Apple: 1 }))).toBe(series);
  expect(appendUpdate(series, updateAt(2))).toBe(series);
});

it("a price series starts again from each greeting's history, the server's, even one that went back", () => {
  const history = { updates: range(1, 3).map((seq) => updateAt(seq)) };
  const greeted = appendUpdate(appendAll([], ...range(500, 505)), history);
  expect(seqs(appendAll(greeted, 4))).toEqual([1, 2, 3, 4]);
  // A server that lost its state starts over at seq 0: its prices, not the ones seen before.
  const restarted = appendUpdate(greeted, { updates: [updateAt(0, { Apple: 99 })] });
  const series = appendUpdate(restarted, updateAt(1, { Apple: 98 }));
  expect(series.map(({ stocks }) => stocks[0]!.price)).toEqual([99, 98]);
});
