import { TestBed } from '@angular/core/testing';

import { PRICE_LOCALE, UsdFormat } from '../../client/app/core/usd-format';

function inLocale(locale?: string): UsdFormat {
  const providers = locale === undefined ? [] : [{ provide: PRICE_LOCALE, useValue: locale }];
  TestBed.configureTestingModule({ providers });
  return TestBed.inject(UsdFormat);
}

it("writes prices in the browser's language by default, exactly as Intl does", () => {
  const usd = inLocale();
  expect(TestBed.inject(PRICE_LOCALE)).toBe(navigator.language);
  const reference = new Intl.NumberFormat(navigator.language, {
    style: 'currency',
    currency: 'USD',
  });
  const prices = [14.49, 14.5, 43, 1234.5678, 0.004];
  expect(prices.map((price) => usd.format(price))).toEqual(prices.map(reference.format));
});

it.each([
  ['en-US', 14.5, '$14.50', 0.01, '+$0.01'],
  ['de-DE', 14.5, '14,50\u00a0$', 0, '0,00\u00a0$'],
  // A malformed locale falls back to en-US instead of taking the board down.
  ['not a locale!', 14.5, '$14.50', 0, '$0.00'],
  // A true minus, as wide as the plus sign.
  ['en-US', 1, '$1.00', -0.03, '\u2212$0.03'],
  // Half a cent or less would round to "$0.00" next to a ▼.
  ['en-US', 1, '$1.00', -0.0031, '\u2212$0.0031'],
])('in %s writes %d as %s and a change of %d as %s', (locale, price, shown, delta, change) => {
  const usd = inLocale(locale);
  expect([usd.format(price), usd.formatChange(delta)]).toEqual([shown, change]);
});
