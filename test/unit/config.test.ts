import { readConfig } from '../../server/config';

describe('readConfig', () => {
  test('defaults', () => {
    expect(readConfig({})).toEqual({
      PORT: 4561,
      HOST: '127.0.0.1',
      TICK_MS: 1000,
      LOG_LEVEL: 'info',
    });
  });

  test('reads every variable', () => {
    expect(readConfig({ PORT: '8080', HOST: '::1', TICK_MS: '250', LOG_LEVEL: 'silent' })).toEqual({
      PORT: 8080,
      HOST: '::1',
      TICK_MS: 250,
      LOG_LEVEL: 'silent',
    });
  });

  test('ignores unrelated variables', () => {
    expect(readConfig({ PATH: '/bin', NODE_ENV: 'test' })).toEqual(readConfig({}));
  });

  test.each<[Record<string, string>, RegExp]>([
    [{ PORT: 'abc' }, /^invalid configuration: PORT: .*number/],
    [{ PORT: '70000' }, /^invalid configuration: PORT: /],
    [{ PORT: '80.5' }, /^invalid configuration: PORT: /],
    [{ TICK_MS: '0' }, /^invalid configuration: TICK_MS: .*>=10/],
    [{ TICK_MS: 'soon' }, /^invalid configuration: TICK_MS: /],
    [{ LOG_LEVEL: 'loud' }, /^invalid configuration: LOG_LEVEL: /],
  ])('a readable error for %j', (env, message) => {
    expect(() => readConfig(env)).toThrow(message);
  });

  test('one error lists every bad variable', () => {
    expect(() => readConfig({ PORT: 'abc', TICK_MS: '0' })).toThrow(
      /^invalid configuration: PORT: .*; TICK_MS: .*$/,
    );
  });
});

// `PORT=` (set but empty, common in .env files and CI templates) means "not set", as
// `process.env.PORT || 4561` did in the original, not port 0.
test('empty variables fall back to their defaults', () => {
  expect(readConfig({ PORT: '', HOST: '', TICK_MS: '', LOG_LEVEL: '' })).toEqual({
    PORT: 4561,
    HOST: '127.0.0.1',
    TICK_MS: 1000,
    LOG_LEVEL: 'info',
  });
});
