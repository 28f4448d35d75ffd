import { BehaviorSubject, Subject } from 'rxjs';

import type { ConnectionState, SocketService } from '../../client/app/core/socket.service';
import type {
  BuyAck,
  HistoryPayload,
  RunAck,
  StatusPayload,
  UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

/**
 * The service's public surface over Subjects: the test plays the server by pushing events,
 * records the operations the component asks for, and answers each one when it chooses (the
 * oldest first).
 */
export class FakeSocketService implements Pick<SocketService, keyof SocketService> {
  readonly status = new Subject<StatusPayload>();
  readonly update = new Subject<UpdatePayload>();
  readonly history = new Subject<HistoryPayload>();
  readonly connection = new BehaviorSubject<ConnectionState>('connected');

  readonly status$ = this.status.asObservable();
  readonly update$ = this.update.asObservable();
  readonly history$ = this.history.asObservable();
  readonly connection$ = this.connection.asObservable();

  private readonly runAnswers: ((ack: RunAck) => void)[] = [];
  private readonly buyAnswers: ((ack: BuyAck) => void)[] = [];

  readonly start = jest.fn(() => new Promise<RunAck>((answer) => this.runAnswers.push(answer)));
  readonly stop = jest.fn(() => new Promise<RunAck>((answer) => this.runAnswers.push(answer)));
  readonly buy = jest.fn(
    (_name: StockName) => new Promise<BuyAck>((answer) => this.buyAnswers.push(answer)),
  );

  answerRun(ack: RunAck): void {
    oldest(this.runAnswers)(ack);
  }

  answerBuy(ack: BuyAck): void {
    oldest(this.buyAnswers)(ack);
  }
}

function oldest<T>(answers: T[]): T {
  const answer = answers.shift();
  if (!answer) throw new Error('nothing is waiting for an answer');
  return answer;
}

export const UPDATE: UpdatePayload = {
  stocks: [
    { name: 'Apple', price: 14.5 },
    { name: 'Microsoft', price: 43 },
    { name: 'Facebook', price: 1234.5678 },
  ],
  running: false,
  seq: 1,
  ts: 1_700_000_000_000,
};

/** An update with the given seq and prices (by stock, in UPDATE's order). */
export function updateAt(
  seq: number,
  prices: Partial<Record<StockName, number>> = {},
): UpdatePayload {
  return {
    ...UPDATE,
    seq,
    ts: UPDATE.ts + seq * 1000,
    stocks: UPDATE.stocks.map((stock) => ({ ...stock, price: prices[stock.name] ?? stock.price })),
  };
}
