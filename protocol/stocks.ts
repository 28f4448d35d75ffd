/** The simulated market: the classic demo's exact figures, so prices match its clients. */
export const SEED_STOCKS = [
  { name: 'Apple', price: 14.5 },
  { name: 'Microsoft', price: 43.0 },
  { name: 'Facebook', price: 37.75 },
] as const;

export type StockName = (typeof SEED_STOCKS)[number]['name'];
export const STOCK_NAMES: readonly StockName[] = SEED_STOCKS.map((stock) => stock.name);

/** A buy raises one price by `price / GROWTH` (+10 %). */
export const GROWTH = 10;
/** Every tick lowers each price by `price / DECAY`. */
export const DECAY = 1800;
export const DEFAULT_TICK_MS = 1000;
/** The last seq the ticker counts to, and the highest a saved state may hold (2^53 - 3). */
export const LAST_SEQ = Number.MAX_SAFE_INTEGER - 2;
/** How many of the latest updates are kept, saved and sent to a new socket as `history`. */
export const HISTORY_LENGTH = 60;
/** Buys within this window of the first are conflated into one `update` (the first at once). */
export const BUY_CONFLATION_MS = 20;
