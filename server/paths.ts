import path from 'node:path';

/** The project root, whether this runs compiled from dist/server or from source (ts-node, jest). */
export const ROOT = path.resolve(
  __dirname,
  path.basename(path.dirname(__dirname)) === 'dist' ? '../..' : '..',
);

export const PATHS = {
  views: path.join(ROOT, 'views'),
  public: path.join(ROOT, 'public'),
  client: path.join(ROOT, 'dist', 'client'),
  contracts: path.join(ROOT, 'dist', 'contracts'),
  tickerChild: path.join(ROOT, 'dist', 'ticker', 'main.js'),
  stateWriter: path.join(ROOT, 'dist', 'server', 'state-writer.js'),
} as const;
