import { TestBed } from '@angular/core/testing';

import { PRICE_LOCALE, UsdFormat } from '../../client/app/core/usd-format';

function inLocale(locale?: string): UsdFormat {
  TestBed.configureTestingModule({
    providers: locale === undefined ? [] : [{ provide: PRICE_LOCALE, useValue: locale }],
  });
  return TestBed.inject(UsdFormat);
}

describe('UsdFormat', () => {
  it("defaults to the browser's language", () => {
    expect(TestBed.inject(PRICE_LOCALE)).toBe(navigator.language);
  });

  it('writes en-US prices exactly as Intl does (what the browser tests look for)', () => {
    const usd = inLocale('en-US');
    const reference = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
    for (const price of [14.49, 14.5, 43, 1234.5678, 0.004]) {
      expect(usd.format(price)).toBe(reference.format(price));
    }
    expect(usd.format(14.49)).toBe('$14.49');
  });

  it('follows the locale', () => {
    expect(inLocale('de-DE').format(14.5)).toBe('14,50\u00a0$');
  });

  it('signs changes with a true minus and keeps small moves visible', () => {
    const usd = inLocale('en-US');
    expect(usd.formatChange(0.01)).toBe('+$0.01');
    expect(usd.formatChange(-0.03)).toBe('\u2212$0.03');
    expect(usd.formatChange(0)).toBe('$0.00');
    // Half a cent or less would round to "$0.00" next to a ▼.
    expect(usd.formatChange(-0.0031)).toBe('\u2212$0.0031');
  });

  it('falls back to en-US for a malformed locale instead of failing', () => {
    expect(inLocale('not a locale!').format(14.5)).toBe('$14.50');
  });
});
