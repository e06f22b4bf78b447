import {
  ipAddressText,
  mappedIpv4Of,
  nat64Ipv4Of,
  networkAddressOf,
  parseIpAddress,
  withoutZone,
} from '@twofold/contracts';

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
 * network); a zone (`fe80::1%eth0`) is dropped. The deprecated IPv4-compatible form
 * (`::192.0.2.1`, which RFC 4291 no longer reads as IPv4) and 6to4 (a site's own /48) stay
 * IPv6. The detector (writing) and the readers (verifier, api) both go through this, so
 * they always name the same keys.
 */
export function lockoutSourceOf(raw: string): LockoutSource | undefined {
  const parsed = parseIpAddress(withoutZone(raw.trim()));
  if (!parsed) return undefined;
  const ip = mappedIpv4Of(parsed) ?? nat64Ipv4Of(parsed) ?? parsed;
  const prefix = LOCKOUT_NETWORK_PREFIX[ip.family];
  return { ip: ipAddressText(ip), network: `${ipAddressText(networkAddressOf(ip, prefix))}/${prefix}` };
}
