import {
  ChangeDetectionStrategy,
  Component,
  DestroyRef,
  NgZone,
  computed,
  inject,
  signal,
} from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { distinctUntilChanged, map, pairwise } from 'rxjs';

import { STATUS, type RunAck } from '../../../protocol/events';
import type { StockName } from '../../../protocol/stocks';
import { MarketStore, RECONNECT_LABELS } from '../core/market.store';
import type { PricePoint } from '../core/price-series';
import { SocketService, type ConnectKind, type ConnectionState } from '../core/socket.service';
import { UsdFormat } from '../core/usd-format';
import { SparklineComponent } from './sparkline.component';

/** The least time between two buys of one stock from this tab: a gentle client-side brake. */
export const BUY_INTERVAL_MS = 250;

/** How long "Bought Apple at $15.95" stays in the status line. */
export const BOUGHT_NOTE_MS = 2000;

type RunOp = 'start' | 'stop';
type Direction = 'up' | 'down' | 'flat';

interface Change {
  readonly direction: Direction;
  readonly text: string;
  /** The flash class: two identical animations alternate by seq parity, so each change restarts. */
  readonly flash: string | null;
}

interface StockRow {
  readonly name: StockName;
  readonly price: string;
  readonly change: Change | null;
  readonly points: readonly PricePoint[];
}

/** One message for the live region; the id makes a repeated text a new node, so it is re-read. */
interface Announcement {
  readonly id: number;
  readonly text: string;
}

/** Live prices with Start / Stop / Buy. Prices come only from broadcasts, so every tab shows the
 * same; acks report progress, buy results and errors. */
@Component({
  selector: 'app-stock-board',
  imports: [SparklineComponent],
  templateUrl: './stock-board.component.html',
  styleUrl: './stock-board.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class StockBoardComponent {
  private readonly socket = inject(SocketService);
  private readonly store = inject(MarketStore);
  private readonly usd = inject(UsdFormat);
  private readonly zone = inject(NgZone);
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private nextId = 0;
  /** Whether a loss was announced that no connect has answered yet. */
  private lossAnnounced = false;

  protected readonly status = this.store.status;
  protected readonly connected = computed(() => this.store.connection() === 'connected');

  protected readonly rows = computed((): readonly StockRow[] | null => {
    const latest = this.store.update();
    if (!latest) return null;
    const series = this.store.series();
    return latest.stocks.map((stock) => {
      const points = series.get(stock.name) ?? [];
      return {
        name: stock.name,
        price: this.usd.format(stock.price),
        change: this.changeOf(points, latest.seq),
        points,
      };
    });
  });

  /** The Start or Stop awaiting its acknowledgement. */
  protected readonly runPending = signal<RunOp | null>(null);
  /** Stocks whose Buy awaits its acknowledgement; each row has at most one in flight. */
  protected readonly buying = signal<ReadonlySet<StockName>>(new Set());
  /** Stocks bought less than BUY_INTERVAL_MS ago. */
  protected readonly cooling = signal<ReadonlySet<StockName>>(new Set());
  protected readonly buyingText = computed(() => {
    const names = [...this.buying()];
    return names.length > 0 ? `Buying ${names.join(', ')}…` : null;
  });
  protected readonly bought = signal<Announcement | null>(null);
  protected readonly error = signal<string | null>(null);
  protected readonly announcements = signal<readonly Announcement[]>([]);

  protected readonly canStart = computed(
    () => this.connected() && this.store.running() === false && !this.runPending(),
  );
  protected readonly canStop = computed(
    () => this.connected() && this.store.running() === true && !this.runPending(),
  );

  constructor() {
    // Statuses and connection losses are announced, price ticks never: no screen-reader flood.
    this.socket.status$
      .pipe(
        map((status) => status.message),
        distinctUntilChanged(),
        takeUntilDestroyed(),
      )
      .subscribe((message) => this.announce(describeStatus(message)));
    this.socket.connection$.pipe(pairwise(), takeUntilDestroyed()).subscribe(([, now]) => {
      const loss = describeLoss(now);
      if (loss) this.lossAnnounced = true;
      this.announce(loss);
    });
    // The return is announced from the connect itself, which says whether anything was missed.
    this.socket.connects$.pipe(takeUntilDestroyed()).subscribe((kind) => {
      this.announce(describeConnect(kind, this.lossAnnounced));
      this.lossAnnounced = false;
    });

    inject(DestroyRef).onDestroy(() => this.timers.forEach((timer) => clearTimeout(timer)));
  }

  protected start(): void {
    void this.run('start', () => this.socket.start());
  }

  protected stop(): void {
    void this.run('stop', () => this.socket.stop());
  }

  protected async buy(name: StockName): Promise<void> {
    // The button stays focusable while held (aria-disabled) so keyboard users keep their place.
    if (this.buying().has(name) || this.cooling().has(name)) return;
    this.buying.update((names) => plus(names, name));
    this.cooling.update((names) => plus(names, name));
    this.later(BUY_INTERVAL_MS, () => this.cooling.update((names) => minus(names, name)));
    this.error.set(null);

    const ack = await this.socket.buy(name);
    this.buying.update((names) => minus(names, name));
    if (!ack.ok) {
      this.fail(`Could not buy ${name}: ${ack.error}`);
      return;
    }
    // The table changes only with the `update` broadcast; the ack is this tab's receipt.
    const note = {
      id: ++this.nextId,
      text: `Bought ${name} at ${this.usd.format(ack.stock.price)}`,
    };
    this.bought.set(note);
    this.announce(note.text);
    this.later(BOUGHT_NOTE_MS, () =>
      this.bought.update((shown) => (shown === note ? null : shown)),
    );
  }

  private async run(op: RunOp, request: () => Promise<RunAck>): Promise<void> {
    if (this.runPending()) return;
    this.runPending.set(op);
    this.error.set(null);
    const ack = await request();
    this.runPending.set(null);
    if (!ack.ok) this.fail(ack.error);
  }

  private changeOf(points: readonly PricePoint[], seq: number): Change | null {
    const previous = points.at(-2);
    const last = points.at(-1);
    // Only a change that belongs to the update on screen; a stale update has none.
    if (!previous || last?.seq !== seq) return null;
    const delta = last.price - previous.price;
    const direction: Direction = delta > 0 ? 'up' : delta < 0 ? 'down' : 'flat';
    return {
      direction,
      text: this.usd.formatChange(delta),
      flash: direction === 'flat' ? null : `flash-${direction}-${seq % 2}`,
    };
  }

  private fail(message: string): void {
    this.error.set(message);
    this.announce(message);
  }

  private announce(text: string | null): void {
    if (text) this.announcements.set([{ id: ++this.nextId, text }]);
  }

  /** Outside the zone, so a pending UI timer does not hold the app "unstable" (whenStable). */
  private later(ms: number, callback: () => void): void {
    const timer = this.zone.runOutsideAngular(() =>
      setTimeout(() => {
        this.timers.delete(timer);
        this.zone.run(callback);
      }, ms),
    );
    this.timers.add(timer);
  }
}

function describeStatus(message: string): string | null {
  switch (message) {
    // Connecting is announced from the connection state, once, not again for the greeting.
    case STATUS.connected:
      return null;
    case STATUS.started:
      return 'Ticker started';
    case STATUS.stopped:
      return 'Ticker stopped';
    default:
      return message;
  }
}

function describeLoss(state: ConnectionState): string | null {
  switch (state) {
    case 'reconnecting':
      return 'Connection lost, reconnecting';
    case 'disconnected':
      return 'Disconnected from the server';
    case 'connected':
    case 'connecting':
      return null;
  }
}

function describeConnect(kind: ConnectKind, lossAnnounced: boolean): string | null {
  switch (kind) {
    case 'first':
      // The page loading is not news, unless its first attempts failed and were announced.
      return lossAnnounced ? 'Connected' : null;
    case 'recovered':
    case 'not-recovered':
      return RECONNECT_LABELS[kind];
  }
}

function plus<T>(set: ReadonlySet<T>, item: T): ReadonlySet<T> {
  return new Set(set).add(item);
}

function minus<T>(set: ReadonlySet<T>, item: T): ReadonlySet<T> {
  const rest = new Set(set);
  rest.delete(item);
  return rest;
}
