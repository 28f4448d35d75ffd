import { existsSync } from 'node:fs';

import { missingTool } from '../helpers/required-tool';

/** Where Debian, Ubuntu and Chrome installs put the browser; CHROME_PATH wins. */
const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
];

/**
 * The system Chromium, or null. Outside CI a missing browser is a loud skip; in CI it is a
 * failure, because a browser suite that silently does not run proves nothing.
 */
export function findChromium(): string | null {
  const fromEnv = process.env['CHROME_PATH'];
  const found = fromEnv && existsSync(fromEnv) ? fromEnv : CANDIDATES.find((p) => existsSync(p));
  if (found) return found;
  return missingTool(
    'browser tests',
    'No Chromium found (set CHROME_PATH or `apt-get install chromium`)',
  );
}

/**
 * Flags for a headless Chromium in a sandbox without a network: no GPU, no first-run UI and no
 * background calls home that this machine would refuse anyway.
 */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
