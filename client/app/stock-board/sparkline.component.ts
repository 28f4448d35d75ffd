import { ChangeDetectionStrategy, Component, computed, inject, input } from '@angular/core';

import { UsdFormat } from '../core/usd-format';

const WIDTH = 64;
const HEIGHT = 20;
/** Room for the end dot and the stroke, so neither is clipped at the edges. */
const PAD = 2.5;
/** The least range drawn full height, as a share of the price, so a one-cent wobble is no crash. */
const MIN_RANGE = 0.01;
/** One decimal is finer than a pixel here and keeps the attribute short. */
const round = (value: number): number => Math.round(value * 10) / 10;

/** Recent prices as a tiny line; SVG attributes and classes only, as the CSP refuses `style`. */
@Component({
  selector: 'app-sparkline',
  templateUrl: './sparkline.component.html',
  styleUrl: './sparkline.component.css',
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class SparklineComponent {
  private readonly usd = inject(UsdFormat);

  readonly name = input.required<string>();
  readonly prices = input.required<readonly number[]>();

  protected readonly geometry = computed(() => {
    const prices = this.prices();
    const [low, high] = [Math.min(...prices), Math.max(...prices)];
    const range = Math.max(high - low, high * MIN_RANGE);
    // Centred in the range, so a flat series sits in the middle.
    const top = (high + low + range) / 2;
    // Spread over the full width; a lone price, all the history there is, is drawn flat across.
    const drawn = prices.length > 1 ? prices : [...prices, ...prices];
    const step = (WIDTH - 2 * PAD) / (drawn.length - 1);
    const coords = drawn.map((price, index) => ({
      x: round(PAD + index * step),
      y: round(range > 0 ? PAD + ((top - price) / range) * (HEIGHT - 2 * PAD) : HEIGHT / 2),
    }));
    const [first = 0, last = 0] = [prices[0], prices.at(-1)];
    return {
      line: coords.map(({ x, y }) => `${x},${y}`).join(' '),
      end: coords.at(-1),
      trend: last > first ? 'up' : last < first ? 'down' : 'flat',
      // The lowest and highest price drawn, shown on hover or focus.
      range: [low, high].map(this.usd.format),
    };
  });

  protected readonly label = computed(() => {
    const [name, prices, [low, high]] = [this.name(), this.prices(), this.geometry().range];
    // A row has at least its own update's price.
    const [first, last] = [this.usd.format(prices[0]!), this.usd.format(prices.at(-1)!)];
    if (prices.length === 1) return `${name}, 1 price so far: ${last}`;
    return `${name}, last ${prices.length} prices, from ${first} to ${last}, low ${low}, high ${high}`;
  });
}
