import type { IncomingMessage } from 'node:http';

import { hostAllowed, originAllowed } from '../../server/hosts';
import { capturingLogger, LEVEL, linesWith } from '../helpers/logs';

const ALLOWED = ['forkcast.example', '.example.test', 'Node1'];

// Localhost names and IP literals are served always; the names in ALLOWED (`.domain` with its
// subdomains) when configured; other names and any malformed Host never. A row per rule.
test.each<[(string | undefined)[], 'always' | 'listed' | 'never']>([
  [['localhost', 'localhost:4561', 'LOCALHOST:4200', 'localhost.'], 'always'],
  [['app.localhost:4561', 'a.b.localhost'], 'always'],
  [['127.0.0.1', '127.0.0.1:4561', '10.1.2.3:80', '192.168.0.10:'], 'always'],
  [['[::1]', '[::1]:4561', '[2001:db8::7]:443', '[::ffff:127.0.0.1]:4561'], 'always'],
  [['forkcast.example', 'forkcast.example:8080'], 'listed'],
  [['FORKCAST.Example', 'forkcast.example.'], 'listed'],
  [['example.test', 'app.example.test:443', 'a.b.example.test'], 'listed'],
  [['node1:4561'], 'listed'],
  [[undefined, ''], 'never'],
  [['evil.example', 'evil.example:4561'], 'never'],
  [['www.forkcast.example', 'forkcast.example.evil', 'node10'], 'never'],
  [['badexample.test', 'example.test.evil'], 'never'],
  [['localhost.evil.example', 'evillocalhost', '127.0.0.1.evil.example'], 'never'],
  // A shortened IPv4 address is a name to DNS.
  [['256.0.0.1', '127.1'], 'never'],
  // IPv6 without brackets, a name or IPv4 address in brackets, a zone.
  [['::1', '[localhost]', '[abc]', '[1.2.3.4]', '[fe80::1%25eth0]'], 'never'],
  // A port that is not a number, userinfo, a path, whitespace, two hosts.
  [['localhost:http', 'evil@localhost', 'localhost/x'], 'never'],
  [['local host', 'localhost, evil.example'], 'never'],
])('%j are served %s', (hosts, when) => {
  for (const host of hosts) {
    expect([host, hostAllowed(host, [])]).toEqual([host, when === 'always']);
    expect([host, hostAllowed(host, ALLOWED)]).toEqual([host, when !== 'never']);
    // * serves any name at all, but still not a request without a Host.
    expect([host, hostAllowed(host, ['*'])]).toEqual([host, host !== undefined]);
  }
});

// The page's own origin by Host, which may come in capitals (URL lowercases the Origin's name).
test.each([
  [undefined, 'localhost:4561', true],
  ['http://good.example', 'localhost:4561', true],
  ['http://localhost:4561', 'LocalHost:4561', true],
  ['http://localhost:4561', 'localhost:4562', false],
  ['http://localhost:4561.evil.example', 'localhost:4561', false],
  ['http://evil.example', 'localhost:4561', false],
  ['null', 'localhost:4561', false],
])('Origin %s with Host %s: allowed %s, a refusal logged at warn', (origin, host, allowed) => {
  const { logger, lines } = capturingLogger();
  const req = { headers: { origin, host } } as IncomingMessage;
  expect(originAllowed(req, ['http://good.example'], logger)).toBe(allowed);
  const logged = linesWith(lines, 'refused a cross-origin request');
  const warned = allowed ? [] : [[LEVEL.warn, origin]];
  expect(logged.map((line) => [line['level'], line['origin']])).toEqual(warned);
});
