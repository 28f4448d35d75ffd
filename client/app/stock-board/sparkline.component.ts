import { ChangeDetectionStrategy, Component, computed, inject, input } from '@angular/core';

import type { PricePoint } from '../core/price-series';
import { UsdFormat } from '../core/usd-format';

const WIDTH = 64;
const HEIGHT = 20;
/** Room for the end dot and the stroke, so neither is clipped at the edges. */
const PAD = 2.5;
/** The least range drawn full height, as a share of the price, so a one-cent wobble is no crash. */
const MIN_RANGE = 0.01;

interface Geometry {
  line: string;
  end: { x: number; y: number } | null;
  trend: 'up' | 'down' | 'flat';
}

/** Recent prices as a tiny line; SVG attributes and classes only, as the CSP refuses `style`. */
@Component({
  selector: 'app-sparkline',
  template: `
    <svg
      class="sparkline"
      viewBox="0 0 64 20"
      width="64"
      height="20"
      role="img"
      [attr.aria-label]="label()"
      [attr.data-trend]="geometry().trend"
    >
      <polyline class="sparkline__line" [attr.points]="geometry().line" />
      @if (geometry().end; as end) {
        <circle class="sparkline__end" [attr.cx]="end.x" [attr.cy]="end.y" r="2" />
      }
    </svg>
  `,
  styles: `
    :host {
      display: inline-flex;
      vertical-align: middle;
    }

    .sparkline {
      color: var(--muted);
      overflow: visible;
    }

    @media (max-width: 30rem) {
      .sparkline {
        width: 2.5rem;
        height: auto;
      }
    }

    .sparkline[data-trend='up'] {
      color: var(--up);
    }

    .sparkline[data-trend='down'] {
      color: var(--down);
    }

    .sparkline__line {
      fill: none;
      stroke: currentColor;
      stroke-width: 1.5;
      stroke-linejoin: round;
      stroke-linecap: round;
    }

    .sparkline__end {
      fill: currentColor;
    }
  `,
  changeDetection: ChangeDetectionStrategy.OnPush,
})
export class SparklineComponent {
  private readonly usd = inject(UsdFormat);

  readonly name = input.required<string>();
  readonly points = input.required<readonly PricePoint[]>();

  protected readonly geometry = computed((): Geometry => {
    const points = this.points();
    const prices = points.map((point) => point.price);
    const low = Math.min(...prices);
    const high = Math.max(...prices);
    const range = Math.max(high - low, high * MIN_RANGE);
    // Centred in the range, so a flat series sits in the middle.
    const top = (high + low + range) / 2;
    const step = points.length > 1 ? (WIDTH - 2 * PAD) / (points.length - 1) : 0;
    const coords = points.map((point, index) => ({
      // Spread over the full width; a lone first point sits at the right, where "now" is.
      x: round(points.length > 1 ? PAD + index * step : WIDTH - PAD),
      y: round(range > 0 ? PAD + ((top - point.price) / range) * (HEIGHT - 2 * PAD) : HEIGHT / 2),
    }));
    const first = prices[0] ?? 0;
    const last = prices.at(-1) ?? 0;
    return {
      line: coords.map(({ x, y }) => `${x},${y}`).join(' '),
      end: coords.at(-1) ?? null,
      trend: last > first ? 'up' : last < first ? 'down' : 'flat',
    };
  });

  protected readonly label = computed(() => {
    const name = this.name();
    const prices = this.points().map((point) => point.price);
    const first = prices[0];
    const last = prices.at(-1);
    if (first === undefined || last === undefined) return `${name}, no prices yet`;
    if (prices.length === 1) return `${name}, 1 price so far: ${this.usd.format(last)}`;
    return `${name}, last ${prices.length} prices, from ${this.usd.format(first)} to ${this.usd.format(last)}`;
  });
}

/** One decimal is finer than a pixel here and keeps the attribute short. */
function round(value: number): number {
  return Math.round(value * 10) / 10;
}
