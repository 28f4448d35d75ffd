import path from 'node:path';

/** The project root, whether this runs compiled from dist/server or from source (ts-node, jest). */
const parent = path.resolve(__dirname, '..');
export const ROOT = path.basename(parent) === 'dist' ? path.dirname(parent) : parent;

export const PATHS = {
  views: path.join(ROOT, 'views'),
  public: path.join(ROOT, 'public'),
  client: path.join(ROOT, 'dist', 'client'),
  contracts: path.join(ROOT, 'dist', 'contracts'),
  tickerChild: path.join(ROOT, 'dist', 'ticker', 'main.js'),
  stateWriter: path.join(ROOT, 'dist', 'server', 'state-writer.js'),
} as const;
