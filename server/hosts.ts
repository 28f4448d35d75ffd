/** Against DNS rebinding: a name an attacker points here still comes as Host; ours alone pass. */
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';

import type { Logger } from 'pino';

/** What a request for a foreign Host is told (never the Host itself: it may be huge). */
export const HOST_REFUSED = 'Host not allowed';

/** A Host header: a name or IPv4 address, or an IPv6 address in brackets, then an optional port. */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d*)?$/;

/** Localhost names and IP literals always pass (DNS cannot rebind them); `allowed` holds names,
 * `.domain` (with subdomains) or `*`. A missing Host is refused, a malformed one unless `*` is. */
export function hostAllowed(hostHeader: string | undefined, allowed: readonly string[]): boolean {
  if (hostHeader === undefined) return false;
  if (allowed.includes('*')) return true;
  const [, ipv6, name] = HOST_HEADER.exec(hostHeader.toLowerCase()) ?? [];
  if (ipv6 !== undefined) return isIPv6(ipv6);
  // A fully qualified name may end in a dot; it is the same name. No name: malformed.
  const host = (name ?? '').replace(/\.$/, '');
  if (host === '') return false;
  if (isIPv4(host) || host === 'localhost' || host.endsWith('.localhost')) return true;
  return allowed.some((entry) => {
    const wanted = entry.toLowerCase().replace(/\.$/, '');
    return wanted.startsWith('.') ? `.${host}`.endsWith(wanted) : host === wanted;
  });
}

/** The check Express and Engine.IO both run on every request; refusals are logged. */
export const hostCheck = (allowed: readonly string[], logger: Logger) => (req: IncomingMessage) => {
  if (hostAllowed(req.headers.host, allowed)) return true;
  logger.warn({ host: req.headers.host?.slice(0, 100) }, 'refused a request for a foreign host');
  return false;
};

/** No Origin (not a browser), a listed one, or the page's own; refusals are logged. */
export function originAllowed(req: IncomingMessage, allowed: readonly string[], logger: Logger) {
  const { origin, host } = req.headers;
  // URL lowercases the name; a Host header may not be.
  const ok =
    origin === undefined ||
    allowed.includes(origin) ||
    (URL.canParse(origin) && new URL(origin).host === host?.toLowerCase());
  if (!ok) logger.warn({ origin }, 'refused a cross-origin request');
  return ok;
}
