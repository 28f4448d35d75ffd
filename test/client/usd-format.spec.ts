import { TestBed } from '@angular/core/testing';

import { PRICE_LOCALE, UsdFormat } from '../../client/app/core/usd-format';

function inLocale(locale?: string): UsdFormat {
  TestBed.configureTestingModule({
    providers: locale === undefined ? [] : [{ provide: PRICE_LOCALE, useValue: locale }],
  });
  return TestBed.inject(UsdFormat);
}

describe('UsdFormat', () => {
  it("writes prices in the browser's language by default, exactly as Intl does", () => {
    const [usd, locale] = [inLocale(), TestBed.inject(PRICE_LOCALE)];
    expect(locale).toBe(navigator.language);
    const reference = new Intl.NumberFormat(locale, { style: 'currency', currency: 'USD' });
    for (const price of [14.49, 14.5, 43, 1234.5678, 0.004]) {
      expect(usd.format(price)).toBe(reference.format(price));
    }
  });

  it.each([
    ['en-US', '$14.50'],
    ['de-DE', '14,50\u00a0$'],
    // A malformed locale falls back to en-US instead of taking the board down.
    ['not a locale!', '$14.50'],
  ])('follows the locale %s', (locale, price) => {
    expect(inLocale(locale).format(14.5)).toBe(price);
  });

  it.each([
    [0.01, '+$0.01'],
    // A true minus, as wide as the plus sign.
    [-0.03, '\u2212$0.03'],
    [0, '$0.00'],
    // Half a cent or less would round to "$0.00" next to a ▼.
    [-0.0031, '\u2212$0.0031'],
  ])('signs the change %d as %s', (delta, change) => {
    expect(inLocale('en-US').formatChange(delta)).toBe(change);
  });
});
