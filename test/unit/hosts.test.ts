import { hostAllowed } from '../../server/hosts';

const ALLOWED = ['forkcast.example', '.example.test', 'Node1'];

// Localhost names and IP literals are served always; the names in ALLOWED (`.domain` with its
// subdomains) when configured; other names and any malformed Host never.
test.each<[string | undefined, 'always' | 'listed' | 'never']>([
  ['localhost', 'always'],
  ['localhost:4561', 'always'],
  ['LOCALHOST:4200', 'always'],
  ['localhost.', 'always'],
  ['app.localhost:4561', 'always'],
  ['a.b.localhost', 'always'],
  ['127.0.0.1', 'always'],
  ['127.0.0.1:4561', 'always'],
  ['10.1.2.3:80', 'always'],
  ['192.168.0.10:', 'always'],
  ['[::1]', 'always'],
  ['[::1]:4561', 'always'],
  ['[2001:db8::7]:443', 'always'],
  ['[::ffff:127.0.0.1]:4561', 'always'],
  ['forkcast.example', 'listed'],
  ['forkcast.example:8080', 'listed'],
  ['FORKCAST.Example', 'listed'],
  ['forkcast.example.', 'listed'],
  ['example.test', 'listed'],
  ['app.example.test:443', 'listed'],
  ['a.b.example.test', 'listed'],
  ['node1:4561', 'listed'],
  [undefined, 'never'],
  ['', 'never'],
  ['evil.example', 'never'],
  ['evil.example:4561', 'never'],
  ['www.forkcast.example', 'never'],
  ['forkcast.example.evil', 'never'],
  ['badexample.test', 'never'],
  ['example.test.evil', 'never'],
  ['node10', 'never'],
  ['localhost.evil.example', 'never'],
  ['evillocalhost', 'never'],
  ['127.0.0.1.evil.example', 'never'],
  ['256.0.0.1', 'never'],
  ['127.1', 'never'], // a shortened IPv4 address is a name to DNS
  ['::1', 'never'], // IPv6 without brackets
  ['[localhost]', 'never'],
  ['[fe80::1%25eth0]', 'never'], // a zone
  ['localhost:http', 'never'],
  ['evil@localhost', 'never'],
  ['localhost/x', 'never'],
  ['local host', 'never'],
  ['localhost, evil.example', 'never'],
])('Host %j is served %s', (host, when) => {
  expect(hostAllowed(host, [])).toBe(when === 'always');
  expect(hostAllowed(host, ALLOWED)).toBe(when !== 'never');
  // * serves any name at all, but still not a request without a Host.
  expect(hostAllowed(host, ['*'])).toBe(host !== undefined);
});

test('a huge Host is refused', () => {
  expect(hostAllowed(`${'a'.repeat(100_000)}.example`, ALLOWED)).toBe(false);
});
