/**
 * The tutorial server's ticker child. Like forkcast's ticker it starts when told, ticks at once
 * and then every TICK_MS, and sends the whole update (seq + 1, ts now) to its parent each tick.
 */
import type { UpdatePayload } from '../protocol/events';
import { DECAY, DEFAULT_TICK_MS, SEED_STOCKS } from '../protocol/stocks';

const tickMs = Number(process.env['TICK_MS'] ?? DEFAULT_TICK_MS);

const state: UpdatePayload = {
  stocks: SEED_STOCKS.map(({ name, price }) => ({ name, price })),
  running: false,
  seq: 1,
  ts: Date.now(),
};

function tick(): void {
  for (const stock of state.stocks) stock.price -= stock.price / DECAY;
  state.seq++;
  state.ts = Date.now();
  process.send?.(state);
}

process.on('message', (message) => {
  if (message !== 'start' || state.running) return;
  state.running = true;
  tick();
  setInterval(tick, tickMs);
});
// The parent going away ends the child.
process.on('disconnect', () => process.exit(0));
// The state before the first tick, for the parent's first clients.
process.send?.(state);
