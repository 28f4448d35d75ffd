import { readConfig } from '../../server/config';

const DEFAULTS = {
  PORT: 4561,
  HOST: '127.0.0.1',
  TICK_MS: 1000,
  LOG_LEVEL: 'info',
  STATE_FILE: 'data/state.json',
  OPS_PER_SECOND: 50,
  CONTROL_TOKEN: undefined,
  CORS_ORIGINS: [],
  ALLOWED_HOSTS: [],
  REDIS_URL: undefined,
  TRANSPORTS: ['websocket', 'polling'],
  CLIENT_DEV_SERVER: false,
};

describe('readConfig', () => {
  test('defaults', () => {
    expect(readConfig({})).toEqual(DEFAULTS);
  });

  test('reads every variable', () => {
    expect(
      readConfig({
        PORT: '8080',
        HOST: '::1',
        TICK_MS: '250',
        LOG_LEVEL: 'silent',
        STATE_FILE: '/var/lib/forkcast/state.json',
        OPS_PER_SECOND: '5',
        CONTROL_TOKEN: 'correct horse battery',
        CORS_ORIGINS: 'https://a.example, http://localhost:4200',
        ALLOWED_HOSTS: 'forkcast.example, .example.test',
        REDIS_URL: 'redis://127.0.0.1:6379/2',
        TRANSPORTS: 'websocket',
        CLIENT_DEV_SERVER: '1',
      }),
    ).toEqual({
      PORT: 8080,
      HOST: '::1',
      TICK_MS: 250,
      LOG_LEVEL: 'silent',
      STATE_FILE: '/var/lib/forkcast/state.json',
      OPS_PER_SECOND: 5,
      CONTROL_TOKEN: 'correct horse battery',
      CORS_ORIGINS: ['https://a.example', 'http://localhost:4200'],
      ALLOWED_HOSTS: ['forkcast.example', '.example.test'],
      REDIS_URL: 'redis://127.0.0.1:6379/2',
      TRANSPORTS: ['websocket'],
      CLIENT_DEV_SERVER: true,
    });
  });

  test.each([
    ['true', true],
    ['0', false],
    ['false', false],
  ])('CLIENT_DEV_SERVER=%s is %s', (value, expected) => {
    expect(readConfig({ CLIENT_DEV_SERVER: value }).CLIENT_DEV_SERVER).toBe(expected);
  });

  test('ignores unrelated variables', () => {
    expect(readConfig({ PATH: '/bin', NODE_ENV: 'test' })).toEqual(readConfig({}));
  });

  const WHOLE = 'must be a whole number in decimal digits';
  const HOSTS = /^invalid configuration: ALLOWED_HOSTS.*host names/;
  test.each<[string, string[], RegExp | string]>([
    ['PORT', ['abc'], /^invalid configuration: PORT: .*number/],
    // Number() reads all of these as numbers; none is a plain decimal integer.
    ['PORT', ['0x10', '1e3', '+5', '-1', '5.0', '80 80', '80.5'], WHOLE],
    ['PORT', ['70000'], /^invalid configuration: PORT: /],
    ['TICK_MS', ['0'], /^invalid configuration: TICK_MS: .*>=10/],
    ['TICK_MS', ['soon', 'Infinity', '1_000'], WHOLE],
    ['LOG_LEVEL', ['loud'], /^invalid configuration: LOG_LEVEL: /],
    ['OPS_PER_SECOND', ['0'], /^invalid configuration: OPS_PER_SECOND: /],
    ['OPS_PER_SECOND', ['0b11', '1e400'], WHOLE],
    ['CONTROL_TOKEN', ['short'], /^invalid configuration: CONTROL_TOKEN: must be at least 8/],
    ['CORS_ORIGINS', ['not a url'], /^invalid configuration: CORS_ORIGINS.*origins/],
    ['REDIS_URL', ['localhost:6379', 'http://127.0.0.1:6379'], /: REDIS_URL: must be a redis:\/\//],
    ['TRANSPORTS', ['websocket,carrier-pigeon'], /^invalid configuration: TRANSPORTS.*websocket/],
    ['CLIENT_DEV_SERVER', ['maybe'], /^invalid configuration: CLIENT_DEV_SERVER: /],
    ['ALLOWED_HOSTS', ['http://evil.example', 'a.example/path', 'two words'], HOSTS],
    ['ALLOWED_HOSTS', ['a.example:8080', '*.example.com', 'ok.example, ..'], HOSTS],
  ])('%s=%j is refused with a readable error', (name, values, message) => {
    const error =
      typeof message === 'string'
        ? new RegExp(`^invalid configuration: ${name}: ${message}$`)
        : message;
    for (const value of values) expect(() => readConfig({ [name]: value })).toThrow(error);
  });

  test('one error lists every bad variable', () => {
    expect(() => readConfig({ PORT: 'abc', TICK_MS: '0' })).toThrow(
      /^invalid configuration: PORT: .*; TICK_MS: .*$/,
    );
  });
});

// `PORT=` (set but empty, common in .env files and CI templates) means "not set", as
// `process.env.PORT || 4561` did in the original, not port 0. `PORT=' '` once listened on a
// random port (Number(' ') is 0): blank is unset too, so main.ts listens on the default 4561.
test.each(['', ' \t ', '\n'])('variables set to %j fall back to their defaults', (value) => {
  const unset = Object.fromEntries(Object.keys(DEFAULTS).map((name) => [name, value]));
  expect(readConfig(unset)).toEqual(DEFAULTS);
});

test.each([
  ['PORT', ' 8080 ', 8080],
  ['PORT', '0', 0],
  ['PORT', '080', 80],
  ['TICK_MS', '\t250\n', 250],
  ['OPS_PER_SECOND', ' 7', 7],
])('%s=%j is %d: decimal digits, surrounding whitespace trimmed', (name, value, expected) => {
  expect(readConfig({ [name]: value })).toMatchObject({ [name]: expected });
});

test('ALLOWED_HOSTS: entries trimmed, empty ones dropped, names, .domains and * kept', () => {
  expect(
    readConfig({ ALLOWED_HOSTS: ' App.Example.test ,, .example.test,* , node_1,' }),
  ).toMatchObject({ ALLOWED_HOSTS: ['App.Example.test', '.example.test', '*', 'node_1'] });
  expect(readConfig({ ALLOWED_HOSTS: ' , ,' }).ALLOWED_HOSTS).toEqual([]);
});
