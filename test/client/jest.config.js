/**
 * Jest project for the Angular client. Runs on its own (`npx jest --config
 * test/client/jest.config.js`) or as one of the root config's `projects`.
 * @type {import('jest').Config}
 */
module.exports = {
  displayName: 'client',
  rootDir: '../..',
  preset: 'jest-preset-angular',
  testEnvironment: 'jest-preset-angular/environments/jest-jsdom-env',
  setupFilesAfterEnv: ['<rootDir>/test/client/setup-jest.ts'],
  testMatch: ['<rootDir>/test/client/**/*.spec.ts'],
  transform: {
    // jest-preset-angular's transformer is ts-jest plus Angular's JIT resource inlining;
    // it must compile with the client's tsconfig (DOM lib, CommonJS), not the server's.
    '^.+\\.(ts|js|mjs|html|svg)$': [
      'jest-preset-angular',
      {
        tsconfig: '<rootDir>/tsconfig.spec.json',
        stringifyContentPathRegex: '\\.(html|svg)$',
      },
    ],
  },
};
