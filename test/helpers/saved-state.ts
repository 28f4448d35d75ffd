/**
 * What a state file written at shutdown may hold, given the last update the clients saw.
 */
import type { UpdatePayload } from '../../protocol/events';
import { savedStateSchema } from '../../protocol/validation';
import { decayAll } from './prices';

/**
 * A running child can tick between the last broadcast and the moment close() cuts it off
 * (its message is already on the way when the server stops broadcasting); the server keeps
 * that tick, though no client saw it. So the file holds the last update seen, or that update
 * after k more ticks, exactly, with seq k higher and the same running flag. Returns the state.
 */
export function expectSavedAfter(saved: unknown, lastSeen: UpdatePayload): UpdatePayload {
  const parsed = savedStateSchema.safeParse(saved);
  if (!parsed.success) throw new Error(`not a valid state: ${JSON.stringify(saved)}`);
  // After a clean shutdown every buy has been broadcast.
  const { unannounced, ...state } = parsed.data;
  expect(unannounced).toBe(false);
  const ticks = state.seq - lastSeen.seq;
  if (ticks === 0 || !lastSeen.running) {
    expect(state).toEqual(lastSeen);
    return state;
  }
  expect(ticks).toBeGreaterThan(0);
  // More than a tick or two would mean the file is not the final state but something else.
  expect(ticks).toBeLessThanOrEqual(2);
  let stocks = lastSeen.stocks;
  for (let i = 0; i < ticks; i++) stocks = decayAll(stocks);
  expect(state).toEqual({ stocks, running: true, seq: state.seq, ts: expect.any(Number) });
  expect(state.ts).toBeGreaterThanOrEqual(lastSeen.ts);
  return state;
}
