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
  TRUST_PROXY: 0,
};

// Set but empty or blank (`PORT=`, common in .env files) means not set, not port 0; others ignored.
const blanks = ['', ' \t ', '\n'].map((blank) =>
  Object.fromEntries(Object.keys(DEFAULTS).map((name) => [name, blank])),
);
test.each([{}, { PATH: '/bin', NODE_ENV: 'test' }, ...blanks])('%j gives the defaults', (env) => {
  expect(readConfig(env)).toEqual(DEFAULTS);
});

// Rows for what is forkcast's own (decimal digits, trimming, lists); zod's own parsers are zod's.
const whole = (name: string) =>
  new RegExp(`^invalid configuration: ${name}: must be a whole number in decimal digits$`);
const HOSTS = /^invalid configuration: ALLOWED_HOSTS.*host names/;
const ORIGIN = /^invalid configuration: CORS_ORIGINS.*origins as browsers send/;
const LISTED = ['App.Example.test', '.example.test', '*', 'node_1', 'forkcast.example.'];
const ORIGINS = ['https://a.example', 'http://localhost:4200', 'http://[::1]:8443'];
test.each<[string, string[], unknown]>([
  ['PORT', ['8080', ' 8080 '], 8080],
  ['PORT', ['0'], 0],
  ['PORT', ['080'], 80],
  ['TICK_MS', ['\t250\n'], 250],
  ['OPS_PER_SECOND', [' 7'], 7],
  ['CONTROL_TOKEN', ['correct horse battery'], 'correct horse battery'],
  ['CORS_ORIGINS', [ORIGINS.join(', ')], ORIGINS],
  // Entries trimmed, empty ones dropped; names, .domains and * kept.
  ['ALLOWED_HOSTS', [' App.Example.test ,, .example.test,* , node_1,forkcast.example.'], LISTED],
  ['ALLOWED_HOSTS', [' , ,'], []],
  ['REDIS_URL', ['redis://127.0.0.1:6379/2'], 'redis://127.0.0.1:6379/2'],
  ['TRANSPORTS', ['websocket'], ['websocket']],
  ['CLIENT_DEV_SERVER', ['true'], true],
  ['CLIENT_DEV_SERVER', ['false'], false],
  ['TRUST_PROXY', [' 2 '], 2],
  ['TRUST_PROXY', ['10.0.0.1, 10.1.0.0/16,::1'], ['10.0.0.1', '10.1.0.0/16', '::1']],
  // Number() reads all of these as numbers; none is a plain decimal integer.
  ['PORT', ['abc', '0x10', '1e3', '+5', '-1', '5.0', '80 80', '80.5'], whole('PORT')],
  ['PORT', ['70000'], /^invalid configuration: PORT: /],
  ['TICK_MS', ['soon', 'Infinity', '1_000'], whole('TICK_MS')],
  ['TICK_MS', ['3600001'], /^invalid configuration: TICK_MS: Too big/],
  ['OPS_PER_SECOND', ['0'], /^invalid configuration: OPS_PER_SECOND: /],
  ['OPS_PER_SECOND', ['0b11', '1e400'], whole('OPS_PER_SECOND')],
  ['CONTROL_TOKEN', ['short'], /^invalid configuration: CONTROL_TOKEN: must be at least 8/],
  ['CORS_ORIGINS', ['not a url'], ORIGIN],
  // Never equal to a browser's Origin header: a path, a default port, capitals.
  ['CORS_ORIGINS', ['https://a.example/', 'http://a.example:80', 'HTTPS://a.example'], ORIGIN],
  ['REDIS_URL', ['localhost:6379', 'http://127.0.0.1:6379'], /: REDIS_URL: must be a redis:\/\//],
  ['TRANSPORTS', ['websocket,carrier-pigeon'], /^invalid configuration: TRANSPORTS.*websocket/],
  ['TRANSPORTS', [' , '], /^invalid configuration: TRANSPORTS: Too small/],
  ['ALLOWED_HOSTS', ['http://evil.example', 'a.example/path', 'two words'], HOSTS],
  ['TRUST_PROXY', ['nginx', '-1', '10.0.0.0/33'], /: TRUST_PROXY: must be a number/],
  ['ALLOWED_HOSTS', ['a.example:8080', '*.example.com', 'ok.example, ..'], HOSTS],
])('%s=%j is %p', (name, values, expected) => {
  for (const value of values) {
    const read = () => readConfig({ [name]: value });
    if (expected instanceof RegExp) expect(read).toThrow(expected);
    else expect(read()).toEqual({ ...DEFAULTS, [name]: expected });
  }
});

test('one error lists every bad variable', () => {
  expect(() => readConfig({ PORT: 'abc', TICK_MS: '0' })).toThrow(
    'invalid configuration: PORT: must be a whole number in decimal digits; TICK_MS: Too small: expected number to be >=10',
  );
});
