/** The contract's price arithmetic, written apart from the code under test so that a changed
 * formula fails the tests. The same float operations in the same order compare exactly. */
import type { Stock, UpdatePayload } from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

export const decayed = (price: number): number => price - price / 1800;
export const grown = (price: number, times = 1): number =>
  times > 0 ? grown(price + price / 10, times - 1) : price;
export const decayAll = (stocks: readonly Stock[]): Stock[] =>
  stocks.map(({ name, price }) => ({ name, price: decayed(price) }));

export function priceOf(stocks: readonly Stock[], name: StockName): number {
  const stock = stocks.find((candidate) => candidate.name === name);
  if (!stock) throw new Error(`no ${name} in ${JSON.stringify(stocks)}`);
  return stock.price;
}

/** The stocks with one stock bought `times` times. */
export const withBuy = (stocks: readonly Stock[], bought: StockName, times = 1): Stock[] =>
  stocks.map(({ name, price }) => ({ name, price: name === bought ? grown(price, times) : price }));

/** Each update after the first has the one before's prices decayed once, none reset or rounded. */
export const expectPricesRunOn = (updates: readonly UpdatePayload[]): void =>
  expect(updates.slice(1).map((u) => u.stocks)).toEqual(
    updates.slice(0, -1).map((u) => decayAll(u.stocks)),
  );

/** The seed market of the classic demo, written out rather than imported. */
export const SEED: readonly Stock[] = [
  { name: 'Apple', price: 14.5 },
  { name: 'Microsoft', price: 43 },
  { name: 'Facebook', price: 37.75 },
];

/** The tests' clock: where fake clocks start, and stateOf's ts. */
export const T0 = 1_700_000_000_000;

export const stateOf = (partial: Partial<UpdatePayload> = {}): UpdatePayload => ({
  stocks: SEED.map((stock) => ({ ...stock })),
  running: false,
  seq: 0,
  ts: T0,
  ...partial,
});
