/**
 * Five kinds of node tests plus the Angular project. Node tests compile through ts-jest with
 * the root tsconfig (type-checking is `npm run typecheck`'s job). They fork the compiled ticker
 * child and start the compiled state writer thread, and the browser tests load the built app,
 * so every node project builds whatever is missing or stale first. Node 22.18+ strips this
 * file's types itself; on older Node (20) jest reads it through ts-node.
 */
import { availableParallelism } from 'node:os';

import type { Config } from 'jest';

type Project = Exclude<NonNullable<Config['projects']>[number], string>;

const nodeProject = (name: string, globalSetup = '<rootDir>/test/global-setup.js'): Project => ({
  displayName: name,
  // A project's global setup runs only when that project has tests selected.
  globalSetup,
  testEnvironment: 'node',
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
});

const config: Config = {
  // The suite mostly waits on child processes, sockets and browsers, so a second worker pays even
  // on two cores, where jest's default (cores - 1) would run every file one after another.
  maxWorkers: Math.max(2, availableParallelism() - 1),
  projects: [
    nodeProject('unit'),
    nodeProject('ipc'),
    nodeProject('integration'),
    {
      ...nodeProject('cluster'),
      setupFilesAfterEnv: ['<rootDir>/test/cluster/timeout.ts'],
    },
    {
      ...nodeProject('e2e', '<rootDir>/test/e2e/global-setup.js'),
      setupFilesAfterEnv: ['<rootDir>/test/e2e/timeout.ts'],
    },
    '<rootDir>/test/client/jest.config.js',
  ],
};

export default config;
