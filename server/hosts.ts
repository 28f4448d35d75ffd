/**
 * The Host allow-list against DNS rebinding: a page whose name an attacker points at this
 * server's address still sends its own name as Host, so only names the server is configured
 * for are served (like Vite's `server.allowedHosts` and Django's `ALLOWED_HOSTS`).
 */
import { isIPv4, isIPv6 } from 'node:net';

/** A Host header: a name or IPv4 address, or an IPv6 address in brackets, then an optional port. */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d*)?$/;

/**
 * Whether a request with this Host header may be served. Always: `localhost`, names under
 * `.localhost` and IP literals (no DNS answer can rebind them). Besides those, each entry of
 * `allowed` is a name (exact), `.domain` (that domain and its subdomains) or `*` (anything).
 * Case-insensitive; the port is ignored; a missing Host (HTTP/1.1 requires one) is refused, and
 * so is a malformed one unless `*` is listed.
 */
export function hostAllowed(hostHeader: string | undefined, allowed: readonly string[]): boolean {
  if (hostHeader === undefined) return false;
  if (allowed.includes('*')) return true;
  const match = HOST_HEADER.exec(hostHeader.toLowerCase());
  if (!match) return false;
  const [, ipv6, name] = match;
  if (ipv6 !== undefined) return isIPv6(ipv6);
  // A fully qualified name may end in a dot; it is the same name.
  const host = withoutFinalDot(name ?? '');
  if (host === '') return false;
  if (isIPv4(host)) return true;
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return allowed.some((entry) => {
    const wanted = withoutFinalDot(entry.toLowerCase());
    return wanted.startsWith('.')
      ? host === wanted.slice(1) || host.endsWith(wanted)
      : host === wanted;
  });
}

function withoutFinalDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}
