import { BehaviorSubject, Subject, type Observable } from 'rxjs';

import type {
  ConnectKind,
  ConnectionState,
  ServerPayloads,
  SocketService,
} from '../../client/app/core/socket.service';
import type {
  BuyAck,
  HistoryPayload,
  RunAck,
  ServerToClientEvents,
  StatusPayload,
  UpdatePayload,
} from '../../protocol/events';
import type { StockName } from '../../protocol/stocks';

/** A settle-it-yourself promise, so a test decides when the "server" answers. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((done) => (resolve = done));
  return { promise, resolve };
}

/**
 * The service's public surface over Subjects: the test plays the server by pushing events,
 * records the operations the component asks for, and answers each one when it chooses.
 */
export class FakeSocketService implements Pick<SocketService, keyof SocketService> {
  readonly events: { [E in keyof ServerToClientEvents]: Subject<ServerPayloads[E]> } = {
    status: new Subject<StatusPayload>(),
    update: new Subject<UpdatePayload>(),
    history: new Subject<HistoryPayload>(),
  };
  readonly connection = new BehaviorSubject<ConnectionState>('connected');
  readonly connects = new Subject<ConnectKind>();

  readonly status$ = this.on('status');
  readonly update$ = this.on('update');
  readonly history$ = this.on('history');
  readonly connection$ = this.connection.asObservable();
  readonly connects$ = this.connects.asObservable();

  /** Unanswered requests, oldest first. */
  readonly pendingRuns: Deferred<RunAck>[] = [];
  readonly pendingBuys: Deferred<BuyAck>[] = [];

  readonly start = jest.fn((): Promise<RunAck> => this.queue(this.pendingRuns));
  readonly stop = jest.fn((): Promise<RunAck> => this.queue(this.pendingRuns));
  readonly buy = jest.fn((_name: StockName): Promise<BuyAck> => this.queue(this.pendingBuys));

  on<E extends keyof ServerToClientEvents>(event: E): Observable<ServerPayloads[E]> {
    return this.events[event].asObservable();
  }

  /** A drop: the socket lost its connection and socket.io-client is retrying. */
  drop(): void {
    this.connection.next('reconnecting');
  }

  /** A `connect` event, as the real service reports it on both streams. */
  connect(kind: ConnectKind): void {
    this.connects.next(kind);
    this.connection.next('connected');
  }

  /** Answers the oldest Start or Stop. */
  answerRun(ack: RunAck): void {
    this.oldest(this.pendingRuns).resolve(ack);
  }

  /** Answers the oldest Buy. */
  answerBuy(ack: BuyAck): void {
    this.oldest(this.pendingBuys).resolve(ack);
  }

  private queue<T>(pending: Deferred<T>[]): Promise<T> {
    const request = deferred<T>();
    pending.push(request);
    return request.promise;
  }

  private oldest<T>(pending: Deferred<T>[]): Deferred<T> {
    const request = pending.shift();
    if (!request) throw new Error('nothing is waiting for an answer');
    return request;
  }
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
