/**
 * The tutorial server's ticker child. Like forkcast's ticker it starts when told, ticks at once
 * and then every TICK_MS, and sends the whole update (seq + 1, ts now) to its parent each tick.
 */
import { advance, state, tickMs } from './market';

function tick(): void {
  process.send?.(advance());
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
