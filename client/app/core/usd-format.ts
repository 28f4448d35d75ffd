import { Injectable, InjectionToken, inject } from '@angular/core';

/** The locale for prices: the browser's by default; a token so tests can choose another. */
export const PRICE_LOCALE = new InjectionToken<string>('PRICE_LOCALE', {
  providedIn: 'root',
  factory: () => navigator.language,
});

/** Typographic minus: the same width as the plus sign, so changes line up in a column. */
const MINUS = '\u2212';

/** Below half a cent a two-decimal change would read "$0.00" while the arrow says it moved. */
const SMALLEST_VISIBLE_CHANGE = 0.005;

/** US-dollar amounts in the reader's locale. Intl, not CurrencyPipe, which knows only en-US
 * unless every locale's data is registered and shipped. */
@Injectable({ providedIn: 'root' })
export class UsdFormat {
  private readonly locale = usableLocale(inject(PRICE_LOCALE));
  private readonly price = this.formatter({});
  private readonly change = this.formatter({ signDisplay: 'exceptZero' });
  private readonly tinyChange = this.formatter({
    signDisplay: 'exceptZero',
    maximumSignificantDigits: 2,
  });

  /** A price, e.g. "$14.49" in en-US, "14,49 $" in de-DE. */
  format(price: number): string {
    return this.price.format(price);
  }

  /** A signed change, e.g. "+$0.01" or "−$0.03"; unchanged is "$0.00". */
  formatChange(delta: number): string {
    const tiny = delta !== 0 && Math.abs(delta) < SMALLEST_VISIBLE_CHANGE;
    const formatter = tiny ? this.tinyChange : this.change;
    return formatter
      .formatToParts(delta)
      .map((part) => (part.type === 'minusSign' ? MINUS : part.value))
      .join('');
  }

  private formatter(options: Intl.NumberFormatOptions): Intl.NumberFormat {
    return new Intl.NumberFormat(this.locale, { style: 'currency', currency: 'USD', ...options });
  }
}

/** A malformed tag would make every Intl constructor throw and take the whole board down. */
function usableLocale(locale: string): string {
  try {
    return Intl.getCanonicalLocales(locale)[0] ?? 'en-US';
  } catch {
    return 'en-US';
  }
}
