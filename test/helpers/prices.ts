/**
 * The contract's price arithmetic, written out independently of the code under test so that a
 * changed formula or constant fails the tests. Results are compared with toBe: the same float
 * operations in the same order give the same bits.
 */
import type { Stock, UpdatePayload } from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

/** One tick: `price -= price / 1800`. */
export function decayed(price: number): number {
  return price - price / 1800;
}

/** One buy: `price += price / 10`. */
export function grown(price: number, times = 1): number {
  let result = price;
  for (let i = 0; i < times; i++) result = result + result / 10;
  return result;
}

export function decayAll(stocks: readonly Stock[]): Stock[] {
  return stocks.map((stock) => ({ name: stock.name, price: decayed(stock.price) }));
}

export function priceOf(stocks: readonly Stock[], name: StockName): number {
  const stock = stocks.find((candidate) => candidate.name === name);
  if (!stock) throw new Error(`no ${name} in ${JSON.stringify(stocks)}`);
  return stock.price;
}

/** The stocks with one stock bought `times` times. */
export function withBuy(stocks: readonly Stock[], name: StockName, times = 1): Stock[] {
  return stocks.map((stock) =>
    stock.name === name ? { name: stock.name, price: grown(stock.price, times) } : { ...stock },
  );
}

/** The seed market of the classic demo, written out rather than imported. */
export const SEED: readonly Stock[] = [
  { name: 'Apple', price: 14.5 },
  { name: 'Microsoft', price: 43 },
  { name: 'Facebook', price: 37.75 },
];

export function stateOf(partial: Partial<UpdatePayload> = {}): UpdatePayload {
  return {
    stocks: SEED.map((stock) => ({ ...stock })),
    running: false,
    seq: 0,
    ts: 1_700_000_000_000,
    ...partial,
  };
}
