import { provideBrowserGlobalErrorListeners, provideZoneChangeDetection } from '@angular/core';
import { bootstrapApplication } from '@angular/platform-browser';

import { AppComponent } from './app/app.component';

void bootstrapApplication(AppComponent, {
  providers: [
    provideBrowserGlobalErrorListeners(),
    // zone.js kept (Angular 21 defaults to zoneless) so the socket can live outside the zone
    // and re-enter it only to deliver values.
    provideZoneChangeDetection({ eventCoalescing: true }),
  ],
}).catch((error: unknown) => {
  // Replace "Loading…" so nobody waits; rethrowing leaves details to the browser's report.
  document
    .querySelector('app-root')
    ?.replaceChildren('forkcast could not start. Please reload the page.');
  throw error;
});
