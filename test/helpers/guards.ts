/** Checks for the tests that throw bad input at the server: nothing reached the child. */
import type { TickerHost } from '../../server/ticker-host';

/** Spies on the ticker host's ops (undo with jest.restoreAllMocks()): whatever the realtime layer
 * lets through reaches the child by one of them. Returns the check that none was called. */
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
