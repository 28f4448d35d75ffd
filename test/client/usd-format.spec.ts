import { TestBed } from '@angular/core/testing';

import { PRICE_LOCALE, UsdFormat } from '../../client/app/core/usd-format';

// The page's spec shows the default, en-US, in use: "$1,234.57", "+$0.01", "−$0.03" (a true minus).
it("takes the browser's language by default", () => {
  jest.spyOn(navigator, 'language', 'get').mockReturnValue('de-CH');
  expect(TestBed.inject(PRICE_LOCALE)).toBe('de-CH');
});

it.each([
  ['de-DE', 14.5, '14,50\u00a0$', 0, '0,00\u00a0$'],
  // A malformed locale falls back to en-US instead of taking the board down.
  ['not a locale!', 14.5, '$14.50', 0, '$0.00'],
  // Half a cent or less would round to "$0.00" next to a ▼; a price rounds to the cent.
  ['en-US', 0.004, '$0.00', -0.0031, '\u2212$0.0031'],
])('in %s writes %d as %s and a change of %d as %s', (locale, price, shown, delta, change) => {
  TestBed.configureTestingModule({ providers: [{ provide: PRICE_LOCALE, useValue: locale }] });
  const usd = TestBed.inject(UsdFormat);
  expect([usd.format(price), usd.formatChange(delta)]).toEqual([shown, change]);
});
