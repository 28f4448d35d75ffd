/**
 * Checks shared by the tests that throw bad input at the server: nothing reached the ticker,
 * and the server and its child are the same as before.
 */
import type { TickerHost } from '../../server/ticker-host';

/**
 * Watches the ticker host's ops without changing them (undo with jest.restoreAllMocks()), and
 * returns a check that none was called: whatever the realtime layer lets through goes to the
 * child by one of them, so "not called" means "nothing reached the child".
 */
export function spyOnOps(ticker: TickerHost): () => void {
  const spies = (['start', 'stop', 'buy'] as const).map((op) => jest.spyOn(ticker, op));
  return () => spies.forEach((spy) => expect(spy).not.toHaveBeenCalled());
}

/** GET /healthz: 200 with the ticker child's pid. */
export async function healthyPid(url: string): Promise<number> {
  const response = await fetch(`${url}/healthz`);
  const body = (await response.json()) as { ok: unknown; pid: unknown };
  expect([response.status, body.ok, typeof body.pid]).toEqual([200, true, 'number']);
  return body.pid as number;
}
