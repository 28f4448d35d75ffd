/** The client's entry files, linked by the Pug shell; a production build hashes their names. */
import { existsSync, readdirSync } from 'node:fs';

export type ClientAssets = Partial<Record<'main' | 'polyfills' | 'styles', string>>;

/** Angular's eight-character content hash before the extension. */
export const HASHED = /-[A-Z0-9]{8}\.[a-z0-9]+$/;
const ENTRY = /^(main|polyfills|styles)(?:-[A-Z0-9]{8})?\.(?:js|css)$/;

/** What Angular's dev server serves from memory, unhashed. */
export const DEV_ASSETS = { main: 'main.js', polyfills: 'polyfills.js', styles: 'styles.css' };

/** File names by entry; `main` is missing when the client is not built. */
export function findClientAssets(clientDir: string): ClientAssets {
  const assets: Record<string, string> = {};
  for (const file of existsSync(clientDir) ? readdirSync(clientDir) : []) {
    const entry = ENTRY.exec(file)?.[1];
    // Two builds copied over each other: which one the shell should link cannot be told.
    if (entry && assets[entry]) throw new Error(`${clientDir} holds ${assets[entry]} and ${file}`);
    if (entry) assets[entry] = file;
  }
  return assets;
}
