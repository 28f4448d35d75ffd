/**
 * The Angular client's jest project, one of the root config's `projects`.
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
    // ts-jest plus Angular's resource inlining, with the client's tsconfig (DOM lib), not the
    // server's.
    '^.+\\.(ts|js|mjs|html|svg)$': [
      'jest-preset-angular',
      { tsconfig: '<rootDir>/tsconfig.spec.json', stringifyContentPathRegex: '\\.(html|svg)$' },
    ],
  },
};
