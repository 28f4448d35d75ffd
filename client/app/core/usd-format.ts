import { Injectable, InjectionToken, inject } from '@angular/core';

/** The locale for prices: the browser's by default; a token so tests can choose another. */
export const PRICE_LOCALE = new InjectionToken<string>('PRICE_LOCALE', {
  providedIn: 'root',
  factory: () => navigator.language,
});

/** US-dollar amounts in the reader's locale ("$14.49", "14,49 $"). Intl, not CurrencyPipe,
 * which knows only en-US unless every locale's data is registered and shipped. */
@Injectable({ providedIn: 'root' })
export class UsdFormat {
  private readonly locales = usableLocales(inject(PRICE_LOCALE));
  private readonly clock = new Intl.DateTimeFormat(this.locales, { timeStyle: 'medium' });
  private readonly price = this.formatter({ signDisplay: 'auto' });
  private readonly change = this.formatter({});
  /** Below half a cent a two-decimal change would read "$0.00" while the arrow says it moved. */
  private readonly tinyChange = this.formatter({ maximumSignificantDigits: 2 });
  private readonly percents = this.formatter({ style: 'percent', maximumFractionDigits: 2 });

  readonly format = (price: number): string => this.price.format(price);
  /** "+$0.01", "−$0.03" or "$0.00". */
  readonly formatChange = (delta: number): string =>
    signed(delta !== 0 && Math.abs(delta) < 0.005 ? this.tinyChange : this.change, delta);
  /** A change as a signed percentage ("+10%", "−0.06%"). */
  readonly percent = (share: number): string => signed(this.percents, share);
  /** A clock time in the reader's locale and time zone ("14:03:12", "2:03:12 PM"). */
  readonly time = (ts: number): string => this.clock.format(ts);

  /** Signed US dollars, unless `options` say otherwise. */
  private formatter(options: Intl.NumberFormatOptions): Intl.NumberFormat {
    const usd = { style: 'currency', currency: 'USD', signDisplay: 'exceptZero' } as const;
    return new Intl.NumberFormat(this.locales, { ...usd, ...options });
  }
}

/** With a typographic minus, as wide as the plus sign, so that changes line up in a column. */
const signed = (formatter: Intl.NumberFormat, value: number): string =>
  formatter.format(value).replace('-', '\u2212');

/** A malformed tag would make every Intl constructor throw and take the whole board down. */
function usableLocales(locale: string): string[] {
  try {
    return Intl.getCanonicalLocales(locale);
  } catch {
    return ['en-US'];
  }
}
