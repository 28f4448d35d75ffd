import { CurrencyPipe } from '@angular/common';
import { ChangeDetectionStrategy, Component, computed, inject, signal } from '@angular/core';
import { toSignal } from '@angular/core/rxjs-interop';
import { map, merge } from 'rxjs';

import type { RunAck } from '../../../protocol/events';
import type { StockName } from '../../../protocol/stocks';
import { SocketService, type ConnectionState } from '../core/socket.service';

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  disconnected: 'Disconnected',
};

/**
 * Live prices with Start / Stop / Buy. Everything shown comes from the server's broadcasts
 * (`status`, `update`); acknowledgements only clear pending flags and report errors, so every
 * open tab shows the same prices.
 */
@Component({
  selector: 'app-stock-board',
  imports: [CurrencyPipe],
  templateUrl: './stock-board.component.html',
  styleUrl: './stock-board.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class StockBoardComponent {
  private readonly socket = inject(SocketService);

  protected readonly status = toSignal(this.socket.status$);
  protected readonly update = toSignal(this.socket.update$);
  protected readonly connection = toSignal(this.socket.connection$, { requireSync: true });

  /** The `running` flag from whichever broadcast said it last; null until the server has. */
  protected readonly running = toSignal(
    merge(this.socket.status$, this.socket.update$).pipe(map((payload) => payload.running)),
    { initialValue: null },
  );

  protected readonly connected = computed(() => this.connection() === 'connected');
  protected readonly connectionLabel = computed(() => CONNECTION_LABELS[this.connection()]);
  protected readonly tickerLabel = computed(() => {
    const running = this.running();
    if (running === null) return 'unknown';
    return running ? 'running' : 'stopped';
  });

  /** A Start or Stop is awaiting its acknowledgement. */
  protected readonly runPending = signal(false);
  /** Stocks whose Buy is awaiting its acknowledgement; each row submits at most one at a time. */
  protected readonly buying = signal<ReadonlySet<StockName>>(new Set());
  protected readonly error = signal<string | null>(null);

  protected readonly canStart = computed(
    () => this.connected() && this.running() === false && !this.runPending(),
  );
  protected readonly canStop = computed(
    () => this.connected() && this.running() === true && !this.runPending(),
  );

  protected start(): void {
    void this.run(() => this.socket.start());
  }

  protected stop(): void {
    void this.run(() => this.socket.stop());
  }

  protected async buy(name: StockName): Promise<void> {
    if (this.buying().has(name)) return;
    this.buying.update((names) => new Set(names).add(name));
    this.error.set(null);
    const ack = await this.socket.buy(name);
    this.buying.update((names) => {
      const rest = new Set(names);
      rest.delete(name);
      return rest;
    });
    // The new price is deliberately not taken from the ack: the `update` broadcast carries it
    // to this tab and every other one alike.
    if (!ack.ok) this.error.set(`Could not buy ${name}: ${ack.error}`);
  }

  private async run(request: () => Promise<RunAck>): Promise<void> {
    if (this.runPending()) return;
    this.runPending.set(true);
    this.error.set(null);
    const ack = await request();
    this.runPending.set(false);
    if (!ack.ok) this.error.set(ack.error);
  }
}
