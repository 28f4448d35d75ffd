import {
  ChangeDetectionStrategy,
  Component,
  Injector,
  NgZone,
  afterNextRender,
  computed,
  inject,
  signal,
  type WritableSignal,
} from '@angular/core';
import { takeUntilDestroyed } from '@angular/core/rxjs-interop';
import { distinctUntilKeyChanged, filter, firstValueFrom, merge, of, pairwise } from 'rxjs';

import { STATUS } from '../../../protocol/events';
import { STOCK_NAMES, type StockName } from '../../../protocol/stocks';
import { MarketStore } from '../core/market.store';
import { CONNECTION_LABELS, SocketService, WATCH_ONLY } from '../core/socket.service';
import { UsdFormat } from '../core/usd-format';
import { SparklineComponent } from './sparkline.component';

/** The least time between two buys of one stock from this tab: a gentle client-side brake. */
export const BUY_INTERVAL_MS = 250;
/** How long "Bought Apple at $15.95" stays in the status line. */
export const BOUGHT_NOTE_MS = 2000;
export const ACTIVITY_LENGTH = 5;

/** What the live region says of a status, if not the status itself; the greeting is no news. */
const STATUS_NEWS = new Map<string, string>([
  [STATUS.connected, ''],
  [STATUS.started, 'Ticker started'],
  [STATUS.stopped, 'Ticker stopped'],
]);

interface Note {
  id: number;
  text: string;
}

/** From `open` to `price`, as shown; null without both. */
function changeSince(usd: UsdFormat, price: number | null, open: number | undefined) {
  if (price === null || open === undefined) return null;
  const [amount, percent] = [usd.formatChange(price - open), usd.percent(price / open - 1)];
  return { direction: price > open ? 'up' : price < open ? 'down' : 'flat', amount, percent };
}

/** Live prices with Start / Stop / Buy; prices come only from broadcasts, so all tabs agree. */
@Component({
  selector: 'app-stock-board',
  imports: [SparklineComponent],
  templateUrl: './stock-board.component.html',
  styleUrl: './stock-board.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class StockBoardComponent {
  private readonly socket = inject(SocketService);
  private readonly zone = inject(NgZone);
  private readonly injector = inject(Injector);
  private nextId = 0;

  protected readonly store = inject(MarketStore);
  protected readonly usd = inject(UsdFormat);
  protected readonly watchOnly = inject(WATCH_ONLY);
  protected readonly iso = (ts: number): string => new Date(ts).toISOString();

  protected readonly rows = computed(() => {
    const latest = this.store.update();
    const series = this.store.series();
    // Only a change that belongs to the update on screen flashes; a stale update has none.
    const current = series.at(-1)?.seq === latest?.seq;
    // Before the first update, the rows are there with placeholders (a skeleton): no jump.
    const stocks = latest?.stocks ?? STOCK_NAMES.map((name) => ({ name, price: null }));
    return stocks.map(({ name, price }, i) => {
      const prices = series.map(({ stocks }) => stocks[i]!.price);
      const [before, after] = prices.slice(-2);
      const delta = current && after !== undefined ? after - before! : 0;
      // Two identical animations alternate by seq parity, so each change restarts the flash.
      const flash = delta ? `flash-${delta > 0 ? 'up' : 'down'}-${(latest?.seq ?? 0) % 2}` : null;
      const change = changeSince(this.usd, price, this.store.opening()?.stocks[i]?.price);
      return { name, price: price === null ? null : this.usd.format(price), prices, change, flash };
    });
  });

  /** How far back the sparklines reach, for the Trend header. */
  protected readonly span = computed(() => {
    const series = this.store.series();
    const seconds = series.length > 1 ? (series.at(-1)!.ts - series[0]!.ts) / 1000 : 0;
    if (seconds < 120) return seconds >= 0.5 ? `${Math.round(seconds)} s` : '';
    return `${Math.round(seconds / 60)} min`;
  });

  protected readonly runPending = signal<'start' | 'stop' | null>(null);
  /** Stocks whose Buy awaits its acknowledgement; each row has at most one in flight. */
  protected readonly buying = signal<readonly StockName[]>([]);
  /** Stocks bought less than BUY_INTERVAL_MS ago. */
  protected readonly cooling = signal<readonly StockName[]>([]);
  protected readonly bought = signal<Note | null>(null);
  protected readonly error = signal<Note | null>(null);
  /** What happened lately, newest first, with the time: runs, the ticker, the connection, buys. */
  protected readonly activity = signal<readonly (Note & { at: string })[]>([]);
  /** The live region's one message; the id makes a repeated text a new node, so it is re-read. */
  protected readonly announcements = signal<readonly Note[]>([]);

  /** Start while stopped, Stop while running, one at a time, only while connected and allowed. */
  protected canRun(op: 'start' | 'stop'): boolean {
    const { store, runPending, watchOnly } = this;
    return store.connected() && store.running() === (op === 'stop') && !runPending() && !watchOnly;
  }

  constructor() {
    // Statuses and connection changes are announced, price ticks never: no screen-reader flood.
    this.socket.status$
      .pipe(distinctUntilKeyChanged('message'), takeUntilDestroyed())
      .subscribe(({ message }) => this.announce(STATUS_NEWS.get(message) ?? message));
    let lossAnnounced = false;
    this.socket.connection$.pipe(takeUntilDestroyed()).subscribe((state) => {
      if (state === 'connecting') return;
      // The page's first connect is no news, unless its failed attempts were announced.
      this.announce(state === 'connected' && !lossAnnounced ? '' : CONNECTION_LABELS[state]);
      lossAnnounced = ['reconnecting', 'unreachable', 'disconnected'].includes(state);
    });
    // Ticks only lower prices, so a rise from one update to the next is a buy, from any tab.
    this.socket.update$.pipe(pairwise(), takeUntilDestroyed()).subscribe(([before, after]) => {
      if (after.seq !== before.seq + 1) return;
      after.stocks.forEach(({ name, price }, i) => {
        const was = before.stocks[i]!.price;
        if (price > was) this.log(`${name} bought, ${this.usd.percent(price / was - 1)}`, after.ts);
      });
    });
  }

  protected async run(op: 'start' | 'stop', other: HTMLElement): Promise<void> {
    if (this.runPending()) return;
    this.runPending.set(op);
    this.error.set(null);
    const ack = await this.socket[op]();
    this.runPending.set(null);
    if (!ack.ok) return this.announce(ack.error, this.error);
    // Focus moves to the other button once the server's state enables it (maybe after the ack).
    const next = op === 'start' ? 'stop' : 'start';
    const changes = merge(of(null), this.socket.status$, this.socket.update$);
    await firstValueFrom(changes.pipe(filter(() => this.canRun(next))));
    // Lost: on the page itself, or still on the pressed button, now disabled.
    const lost = (): boolean => document.activeElement?.matches('body, :disabled') ?? true;
    afterNextRender(() => lost() && other.focus(), { injector: this.injector });
  }

  protected async buy(name: StockName): Promise<void> {
    // The button stays focusable while held (aria-disabled) so keyboard users keep their place.
    if (this.cooling().includes(name) || this.buying().includes(name)) return;
    const without = (names: readonly StockName[]) => names.filter((n) => n !== name);
    this.buying.update((names) => [...names, name]);
    this.cooling.update((names) => [...names, name]);
    this.later(BUY_INTERVAL_MS, () => this.cooling.update(without));
    this.error.set(null);

    const ack = await this.socket.buy(name);
    this.buying.update(without);
    if (!ack.ok) return this.announce(`Could not buy ${name}: ${ack.error}`, this.error);
    // The table changes only with the `update` broadcast; the ack is this tab's receipt.
    this.announce(`Bought ${name} at ${this.usd.format(ack.stock.price)}`, this.bought);
    const note = this.bought();
    this.later(BOUGHT_NOTE_MS, () => this.bought.update((now) => (now === note ? null : now)));
  }

  private log(text: string, ts = Date.now()): void {
    const entry = { id: ++this.nextId, text, at: this.usd.time(ts) };
    if (text) this.activity.update((list) => [entry, ...list].slice(0, ACTIVITY_LENGTH));
  }

  /** Says `text`, then shows it in `shown` if this tab's own receipt or error, else logs it. */
  private announce(text: string, shown?: WritableSignal<Note | null>): void {
    const note = { id: ++this.nextId, text };
    if (text) this.announcements.set([note]);
    if (shown) shown.set(note);
    else this.log(text);
  }

  /** Outside the zone, so a pending UI timer does not hold the app "unstable" (whenStable). */
  private later(ms: number, callback: () => void): void {
    this.zone.runOutsideAngular(() => setTimeout(() => this.zone.run(callback), ms));
  }
}
