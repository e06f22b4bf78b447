import { isIP } from 'node:net';

/** Prefix lengths of the "network" of an address in lockout state (fixed: part of the key layout). */
export const LOCKOUT_NETWORK_PREFIX = { ipv4: 24, ipv6: 64 } as const;

/** A client address in the one spelling lockout state uses, and its network. */
export interface LockoutSource {
  /** Canonical address: dotted IPv4 (also for IPv4-mapped and NAT64 IPv6), RFC 5952 IPv6. */
  readonly ip: string;
  /** IPv4 /24 or IPv6 /64 in CIDR form, e.g. `203.0.113.0/24`, `2001:db8:1:2::/64`. */
  readonly network: string;
}

/**
 * The canonical address and network of `raw`, or undefined when it is not an IP address.
 * `2001:DB8:0:0::1`, `2001:db8::1` and `2001:db8::0:1` are one address; `::ffff:192.0.2.1`
 * is `192.0.2.1`, and so is `64:ff9b::192.0.2.1` (NAT64, RFC 6052: the well-known prefix
 * /96 holds IPv4 hosts; as one IPv6 /64 every host behind one gateway would be one
 * network); a zone (`fe80::1%eth0`) is dropped. The detector (writing) and the
 * readers (verifier, api) both go through this, so they always name the same keys.
 */
export function lockoutSourceOf(raw: string): LockoutSource | undefined {
  let text = raw.trim();
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const kind = isIP(text);
  if (kind === 4) return ipv4Source(text.split('.').map(Number));
  if (kind !== 6) return undefined;
  const groups = expandIpv6(text);
  if (!groups) return undefined;
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0);
  if (mapped || nat64) {
    return ipv4Source([groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff]);
  }
  return {
    ip: compressIpv6(groups),
    network: `${compressIpv6([...groups.slice(0, 4), 0, 0, 0, 0])}/${LOCKOUT_NETWORK_PREFIX.ipv6}`,
  };
}

function ipv4Source(octets: number[]): LockoutSource {
  return {
    ip: octets.join('.'),
    network: `${octets.slice(0, 3).join('.')}.0/${LOCKOUT_NETWORK_PREFIX.ipv4}`,
  };
}

function expandIpv6(text: string): number[] | undefined {
  let body = text.toLowerCase();
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 (`::ffff:192.0.2.1`) is two 16-bit groups.
    const o = last.split('.').map(Number);
    const hi = ((o[0]! << 8) | o[1]!).toString(16);
    const lo = ((o[2]! << 8) | o[3]!).toString(16);
    body = `${body.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((h) => parseInt(h, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  const fill = 8 - head.length - rest.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** RFC 5952: lower-case hex, no leading zeros, the longest run (2+) of zero groups as `::`. */
function compressIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLength < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
