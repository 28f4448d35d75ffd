import { hostAllowed } from '../../server/hosts';

describe('hostAllowed, with nothing configured', () => {
  test.each([
    'localhost',
    'localhost:4561',
    'LOCALHOST:4200',
    'localhost.',
    'app.localhost:4561',
    'a.b.localhost',
    '127.0.0.1',
    '127.0.0.1:4561',
    '10.1.2.3:80',
    '192.168.0.10:',
    '[::1]',
    '[::1]:4561',
    '[2001:db8::7]:443',
    '[::ffff:127.0.0.1]:4561',
  ])('serves %j', (host) => {
    expect(hostAllowed(host, [])).toBe(true);
  });

  test.each([
    ['a missing Host', undefined],
    ['an empty Host', ''],
    ['a foreign name', 'evil.example'],
    ['a foreign name with a port', 'evil.example:4561'],
    ['a name that merely starts with localhost', 'localhost.evil.example'],
    ['a name that merely ends in localhost', 'evillocalhost'],
    ['a name that looks like an IP', '127.0.0.1.evil.example'],
    ['an IPv4 address out of range', '256.0.0.1'],
    ['a shortened IPv4 address (a name to DNS)', '127.1'],
    ['an IPv6 address without brackets', '::1'],
    ['a bracketed name', '[localhost]'],
    ['an IPv6 address with a zone', '[fe80::1%25eth0]'],
    ['a port that is not a number', 'localhost:http'],
    ['userinfo', 'evil@localhost'],
    ['a path', 'localhost/x'],
    ['whitespace', 'local host'],
    ['two hosts', 'localhost, evil.example'],
    ['a huge value', `${'a'.repeat(100_000)}.example`],
  ])('refuses %s', (_title, host) => {
    expect(hostAllowed(host, [])).toBe(false);
  });
});

describe('hostAllowed, with allowed names', () => {
  const allowed = ['forkcast.example', '.example.test', 'Node1'];

  test.each<[string, boolean]>([
    ['forkcast.example', true],
    ['forkcast.example:8080', true],
    ['FORKCAST.Example', true],
    ['forkcast.example.', true],
    ['example.test', true],
    ['app.example.test:443', true],
    ['a.b.example.test', true],
    ['node1:4561', true],
    // The built-in names stay served.
    ['localhost:4561', true],
    ['[::1]:4561', true],
    ['www.forkcast.example', false],
    ['forkcast.example.evil', false],
    ['badexample.test', false],
    ['example.test.evil', false],
    ['node10', false],
    ['evil.example', false],
  ])('%j is served: %s', (host, served) => {
    expect(hostAllowed(host, allowed)).toBe(served);
  });
});

test('hostAllowed, with *, serves any name but still refuses a request without a Host', () => {
  for (const host of ['evil.example', 'anything:1', 'localhost'])
    expect(hostAllowed(host, ['*'])).toBe(true);
  expect(hostAllowed(undefined, ['*'])).toBe(false);
});
