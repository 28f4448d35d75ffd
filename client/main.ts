import { bootstrapApplication } from '@angular/platform-browser';

import { AppComponent } from './app/app.component';
import { appConfig } from './app/app.config';

void bootstrapApplication(AppComponent, appConfig).catch((error: unknown) => {
  // Replace the shell's "Loading…" text so nobody waits for an app that will not come;
  // rethrowing leaves the details to the browser's own unhandled-rejection report.
  document
    .querySelector('app-root')
    ?.replaceChildren('forkcast could not start. Please reload the page.');
  throw error;
});
