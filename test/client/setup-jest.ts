import { setupZoneTestEnv } from 'jest-preset-angular/setup-env/zone';

// The app runs on zone.js (the socket lives outside the zone, values are re-entered into it),
// so the tests use the same change-detection model rather than the zoneless default.
setupZoneTestEnv();
