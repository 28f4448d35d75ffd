/**
 * Five kinds of node tests plus the Angular project. Node tests compile through ts-jest with
 * the root tsconfig (type-checking is `npm run typecheck`'s job). Tests that fork the ticker
 * child use the compiled dist/ticker/main.js, and the browser tests the built app, so those
 * projects build whatever is missing or stale first. Node 22.18+ strips this file's types
 * itself; on older Node (20) jest reads it through ts-node. Every project's rootDir is this folder.
 */
import type { Config } from 'jest';

type Project = Exclude<NonNullable<Config['projects']>[number], string>;

const nodeProject = (
  name: string,
  globalSetup: string | null = '<rootDir>/test/global-setup.js',
): Project => ({
  displayName: name,
  // A project's global setup runs only when that project has tests selected.
  ...(globalSetup ? { globalSetup } : {}),
  testEnvironment: 'node',
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
  },
});

const config: Config = {
  projects: [
    nodeProject('unit', null),
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
