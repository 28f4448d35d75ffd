import {
  type ApplicationConfig,
  provideBrowserGlobalErrorListeners,
  provideZoneChangeDetection,
} from '@angular/core';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    // zone.js kept (Angular 21 defaults to zoneless) so the socket can live outside the zone
    // and re-enter it only to deliver values.
    provideZoneChangeDetection({ eventCoalescing: true }),
  ],
};
