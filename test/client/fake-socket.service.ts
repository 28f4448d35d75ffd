import { BehaviorSubject, Subject } from 'rxjs';

import type { ConnectionState, SocketService } from '../../client/app/core/socket.service';
import type * as events from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

/** The service over Subjects: the test pushes the server's events and answers ops, oldest first. */
export class FakeSocketService implements Pick<SocketService, keyof SocketService> {
  readonly status$ = new Subject<events.StatusPayload>();
  readonly update$ = new Subject<events.UpdatePayload>();
  readonly history$ = new Subject<events.HistoryPayload>();
  readonly opening$ = new Subject<events.OpeningPayload>();
  readonly connection$ = new BehaviorSubject<ConnectionState>('connected');

  private readonly waiting: ((ack: never) => void)[] = [];
  private readonly ask = <T>() => new Promise<T>((answer) => this.waiting.push(answer));

  readonly start = jest.fn(() => this.ask<events.RunAck>());
  readonly stop = jest.fn(() => this.ask<events.RunAck>());
  readonly buy = jest.fn((_name: StockName) => this.ask<events.BuyAck>());

  answer(ack: events.RunAck | events.BuyAck): void {
    const oldest = this.waiting.shift();
    if (!oldest) throw new Error('nothing is waiting for an answer');
    oldest(ack as never);
  }
}

/** An update at `seq`; each stock not named at a price of its own (Facebook's past the cent). */
export function updateAt(seq: number, prices: Partial<Record<StockName, number>> = {}) {
  const all = { Apple: 14.5, Microsoft: 43, Facebook: 1234.5678, ...prices };
  const stocks = Object.entries(all).map(([name, price]) => ({ name: name as StockName, price }));
  const ts = 1_700_000_000_000 + seq * 1000;
  return { stocks, running: false, seq, ts } satisfies events.UpdatePayload;
}
