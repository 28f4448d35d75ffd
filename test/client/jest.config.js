/**
 * The Angular client's jest project, one of the root config's `projects`. The preset compiles
 * with tsconfig.spec.json (DOM lib) and inlines templates and styles.
 * @type {import('jest').Config}
 */
module.exports = {
  displayName: 'client',
  rootDir: '../..',
  preset: 'jest-preset-angular',
  testEnvironment: 'jest-preset-angular/environments/jest-jsdom-env',
  setupFilesAfterEnv: ['<rootDir>/test/client/setup-jest.ts'],
  testMatch: ['<rootDir>/test/client/**/*.spec.ts'],
};
