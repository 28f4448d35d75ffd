/**
 * Checks shared by the tests that throw bad input at the server: nothing reached the ticker,
 * the server and its child are the same as before, and errors are safe to show a caller.
 */
import type { TickerHost } from '../../server/ticker-host';

export interface OpSpies {
  start: jest.SpiedFunction<TickerHost['start']>;
  stop: jest.SpiedFunction<TickerHost['stop']>;
  buy: jest.SpiedFunction<TickerHost['buy']>;
}

/**
 * Watches the ticker host's ops without changing them. Whatever the realtime layer lets
 * through goes to the child by one of these, so "not called" means "nothing reached the child".
 * Undo with jest.restoreAllMocks().
 */
export function spyOnOps(ticker: TickerHost): OpSpies {
  return {
    start: jest.spyOn(ticker, 'start'),
    stop: jest.spyOn(ticker, 'stop'),
    buy: jest.spyOn(ticker, 'buy'),
  };
}

export function expectNoOps(spies: OpSpies): void {
  expect(spies.start).not.toHaveBeenCalled();
  expect(spies.stop).not.toHaveBeenCalled();
  expect(spies.buy).not.toHaveBeenCalled();
}

/** An error written for a caller: a short single line, no stack frame, no source path. */
export function expectSafeError(error: unknown): void {
  expect(typeof error).toBe('string');
  const text = String(error);
  expect(text.length).toBeGreaterThan(0);
  expect(text.length).toBeLessThanOrEqual(200);
  for (const leak of ['\n', '/work', 'node_modules', '.ts:', '.js:', 'at ', 'Error:']) {
    expect(text).not.toContain(leak);
  }
}

/** GET /healthz: 200 with the ticker child's pid. */
export async function healthyPid(url: string): Promise<number> {
  const response = await fetch(`${url}/healthz`);
  expect(response.status).toBe(200);
  const body = (await response.json()) as { ok: unknown; pid: unknown };
  expect(body.ok).toBe(true);
  if (typeof body.pid !== 'number') throw new Error(`no pid in ${JSON.stringify(body)}`);
  return body.pid;
}
