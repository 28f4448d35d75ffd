import { bootstrapApplication } from '@angular/platform-browser';

import { AppComponent } from './app/app.component';
import { appConfig } from './app/app.config';

void bootstrapApplication(AppComponent, appConfig).catch((error: unknown) => {
  // Replace "Loading…" so nobody waits; rethrowing leaves details to the browser's report.
  document
    .querySelector('app-root')
    ?.replaceChildren('forkcast could not start. Please reload the page.');
  throw error;
});
