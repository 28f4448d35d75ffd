/** Host allow-list against DNS rebinding: a page whose name an attacker points at this server
 * still sends that name as Host, so only configured names are served. */
import { isIPv4, isIPv6 } from 'node:net';

/** A Host header: a name or IPv4 address, or an IPv6 address in brackets, then an optional port. */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9_.-]+))(?::\d*)?$/;

/** Localhost names and IP literals always pass (DNS cannot rebind them); `allowed` holds names,
 * `.domain` (with subdomains) or `*`. A missing or malformed Host is refused unless `*` is. */
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
