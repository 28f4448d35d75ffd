/** The baselines' market: forkcast's seed prices and decay, in the `update` payload's shape. */
import type { UpdatePayload } from '../protocol/events';
import { DECAY, DEFAULT_TICK_MS, SEED_STOCKS } from '../protocol/stocks';

export const tickMs = Number(process.env['TICK_MS'] ?? DEFAULT_TICK_MS);

export const state: UpdatePayload = {
  stocks: SEED_STOCKS.map(({ name, price }) => ({ name, price })),
  running: false,
  seq: 1,
  ts: Date.now(),
};

/** One tick: every price decays, seq and ts move on. */
export function advance(): UpdatePayload {
  for (const stock of state.stocks) stock.price -= stock.price / DECAY;
  state.seq++;
  state.ts = Date.now();
  return state;
}
