import {
  type ApplicationConfig,
  provideBrowserGlobalErrorListeners,
  provideZoneChangeDetection,
} from '@angular/core';

export const appConfig: ApplicationConfig = {
  providers: [
    provideBrowserGlobalErrorListeners(),
    // Angular 21 defaults to zoneless; this app keeps zone.js so that the socket can live
    // outside the zone and re-enter it only to deliver values. Coalescing merges the change
    // detection runs of events that fire together (a click and its bubbling) into one.
    provideZoneChangeDetection({ eventCoalescing: true }),
  ],
};
