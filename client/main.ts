import { provideBrowserGlobalErrorListeners, provideZoneChangeDetection } from '@angular/core';
import { bootstrapApplication } from '@angular/platform-browser';

import { AppComponent } from './app/app.component';

void bootstrapApplication(AppComponent, {
  // zone.js kept (Angular 21 defaults to zoneless) so the socket can live outside the zone.
  providers: [
    provideBrowserGlobalErrorListeners(),
    provideZoneChangeDetection({ eventCoalescing: true }),
  ],
}).catch((error: unknown) => {
  // Replace "Loading…" so nobody waits; the browser reports the details.
  const root = document.querySelector('app-root');
  root?.replaceChildren('forkcast could not start. Please reload the page.');
  throw error;
});
