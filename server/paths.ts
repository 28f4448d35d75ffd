import { existsSync } from 'node:fs';
import path from 'node:path';

/** The project root (walking up to package.json), so views/ and dist/ are found both from
 * dist/server and from source under ts-node / jest. */
function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const ROOT = findRoot(__dirname);

export const PATHS = {
  views: path.join(ROOT, 'views'),
  public: path.join(ROOT, 'public'),
  client: path.join(ROOT, 'dist', 'client'),
  tickerChild: path.join(ROOT, 'dist', 'ticker', 'main.js'),
  stateWriter: path.join(ROOT, 'dist', 'server', 'state-writer.js'),
} as const;
