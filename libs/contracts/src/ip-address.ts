// IP addresses read and written one way for every service: the lockout detector's keys, the
// audit trail's `inet` column and hash chain, and the webhook denylist all parse here and pick
// the spelling and the embedded-IPv4 forms their own rules need.

export type IpFamily = 'ipv4' | 'ipv6';

/** An IP address as its bytes, in network order: 4 for IPv4, 16 for IPv6. Never mutated. */
export interface ParsedIpAddress {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
}

const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/**
 * The four octets of a dotted quad (decimal, 0–255, no leading zeros), else undefined. A loop
 * over the characters rather than split and a regex per octet: the lockout detector parses
 * every failure's address, tens of thousands a second.
 */
function ipv4Octets(text: string): number[] | undefined {
  const octets: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46; // the end closes the last octet like a '.'
    if (c === 46) {
      if (digits === 0 || octets.length === 4) return undefined;
      octets.push(value);
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return undefined; // a leading zero
      value = value * 10 + (c - 48);
      if (value > 255) return undefined;
      digits++;
    } else {
      return undefined;
    }
  }
  return octets.length === 4 ? octets : undefined;
}

function ipv6Groups(text: string): number[] | undefined {
  let hex = text;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // A dotted IPv4 tail (`::ffff:192.0.2.1`) is the last two 16-bit groups.
    const o = ipv4Octets(last);
    if (!o) return undefined;
    hex = `${text.slice(0, lastColon + 1)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = hex.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (![...head, ...tail].every((g) => IPV6_GROUP.test(g))) return undefined;
  const given = head.length + tail.length;
  // `::` stands for one or more zero groups (RFC 4291 §2.2), never for none.
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  return [...head, ...Array<string>(8 - given).fill('0'), ...tail].map((g) => parseInt(g, 16));
}

/**
 * `text` as an IP address, or undefined when it is not exactly one: IPv4 as a dotted quad of
 * decimal octets without leading zeros (`192.0.2.1`; not `0xc0000201`, `3221225985` or
 * `192.000.2.1`, which some parsers read as other addresses), or IPv6 as RFC 4291 §2.2 writes it
 * (hex groups in either case, one `::`, an optional dotted IPv4 tail). Accepts what Node's
 * `net.isIPv4` / `net.isIPv6` accept, except a zone. Strict: no surrounding space, brackets,
 * zone or prefix. A zone (`fe80::1%eth0`) names a link on one host, not an address: a caller
 * that may be given one takes it off with withoutZone() first; one that must store the address
 * (Postgres `inet` refuses zones) leaves it on and gets undefined.
 */
export function parseIpAddress(text: string): ParsedIpAddress | undefined {
  if (!text.includes(':')) {
    const octets = ipv4Octets(text);
    return octets && { family: 'ipv4', bytes: Uint8Array.from(octets) };
  }
  const groups = ipv6Groups(text);
  if (!groups) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return { family: 'ipv6', bytes };
}

/** `text` without an IPv6 zone: everything from its first `%` on is dropped (`fe80::1%eth0` → `fe80::1`). */
export function withoutZone(text: string): string {
  const zone = text.indexOf('%');
  return zone === -1 ? text : text.slice(0, zone);
}

// A template, not TypedArray join: this runs for every failure the lockout detector reads.
const ipv4Text = (b: Uint8Array) => `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;

function groupsOf(ip: ParsedIpAddress): number[] {
  return Array.from({ length: 8 }, (_, i) => (ip.bytes[2 * i]! << 8) | ip.bytes[2 * i + 1]!);
}

/**
 * The canonical text of an address: IPv4 dotted decimal; IPv6 as RFC 5952 §4 writes it (lower-case
 * hex without leading zeros, the first longest run of two or more zero groups as `::`), which is
 * also how the URL standard writes an IPv6 host. An IPv4 tail is never dotted, not even for an
 * IPv4-mapped address (`::ffff:c000:201`): a caller that means the IPv4 address takes it out
 * with mappedIpv4Of().
 */
export function ipAddressText(ip: ParsedIpAddress): string {
  if (ip.family === 'ipv4') return ipv4Text(ip.bytes);
  const groups = groupsOf(ip);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; i++) {
    if (groups[i] !== 0) continue;
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/**
 * The address with every group written out: IPv4 dotted decimal, IPv6 as eight 4-digit lower-case
 * hex groups (`2001:0db8:0000:0000:0000:0000:0000:0001`), IPv4-mapped included. The audit trail's
 * hash chain covers this text: it must never change.
 */
export function expandedIpAddressText(ip: ParsedIpAddress): string {
  if (ip.family === 'ipv4') return ipv4Text(ip.bytes);
  return groupsOf(ip)
    .map((g) => g.toString(16).padStart(4, '0'))
    .join(':');
}

/** The address with every bit past the first `prefixLength` cleared: the first address of its network. */
export function networkAddressOf(ip: ParsedIpAddress, prefixLength: number): ParsedIpAddress {
  const bytes = new Uint8Array(ip.bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const kept = Math.min(Math.max(prefixLength - 8 * i, 0), 8);
    bytes[i] = ip.bytes[i]! & ((0xff00 >> kept) & 0xff);
  }
  return { family: ip.family, bytes };
}

function ipv4At(ip: ParsedIpAddress, offset: number): ParsedIpAddress {
  return { family: 'ipv4', bytes: ip.bytes.slice(offset, offset + 4) };
}

/** Whether `ip` is IPv6 and its first bytes are `prefix`. */
function startsWith(ip: ParsedIpAddress, prefix: readonly number[]): boolean {
  return ip.family === 'ipv6' && prefix.every((byte, i) => ip.bytes[i] === byte);
}

const ZEROS_80 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
const MAPPED_PREFIX = [...ZEROS_80, 0xff, 0xff];
const NAT64_PREFIX = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
const COMPATIBLE_PREFIX = [...ZEROS_80, 0, 0];
const SIX_TO_FOUR_PREFIX = [0x20, 0x02];

/**
 * The IPv4 address of an IPv4-mapped IPv6 address (`::ffff:0:0/96`, RFC 4291 §2.5.5.2:
 * `::ffff:192.0.2.1` → `192.0.2.1`), else undefined. A socket connecting to the mapped form
 * reaches the IPv4 host itself: for every purpose here the two are one address.
 */
export function mappedIpv4Of(ip: ParsedIpAddress): ParsedIpAddress | undefined {
  return startsWith(ip, MAPPED_PREFIX) ? ipv4At(ip, 12) : undefined;
}

/**
 * The IPv4 address in NAT64's well-known prefix (`64:ff9b::/96`, RFC 6052: `64:ff9b::c000:201` →
 * `192.0.2.1`), else undefined. A NAT64 gateway sends packets for it to that IPv4 host.
 * Local-use prefixes (`64:ff9b:1::/48`, RFC 8215) and operators' own are not recognised: their
 * layout is the network's choice.
 */
export function nat64Ipv4Of(ip: ParsedIpAddress): ParsedIpAddress | undefined {
  return startsWith(ip, NAT64_PREFIX) ? ipv4At(ip, 12) : undefined;
}

/**
 * The IPv4 address in a deprecated IPv4-compatible IPv6 address (`::/96` but not `::` or `::1`,
 * RFC 4291 §2.5.5.1: `::192.0.2.1` → `192.0.2.1`), else undefined. Old stacks tunnel such an
 * address to the IPv4 host; RFC 4291 no longer gives it that meaning, so the lockout spelling
 * keeps it IPv6, while the webhook denylist treats it as a way to reach the IPv4 host.
 */
export function compatibleIpv4Of(ip: ParsedIpAddress): ParsedIpAddress | undefined {
  if (!startsWith(ip, COMPATIBLE_PREFIX)) return undefined;
  const last = ip.bytes.slice(12);
  const unspecifiedOrLoopback = last[0] === 0 && last[1] === 0 && last[2] === 0 && last[3]! <= 1;
  return unspecifiedOrLoopback ? undefined : ipv4At(ip, 12);
}

/**
 * The IPv4 address of a 6to4 address (`2002::/16`, RFC 3056: the site prefix `2002:AABB:CCDD::/48`
 * holds the IPv4 address `AA.BB.CC.DD` of its relay; `2002:c000:201::1` → `192.0.2.1`), else
 * undefined. A 6to4 relay sends packets for the whole /48 to that IPv4 host.
 */
export function sixToFourIpv4Of(ip: ParsedIpAddress): ParsedIpAddress | undefined {
  return startsWith(ip, SIX_TO_FOUR_PREFIX) ? ipv4At(ip, 2) : undefined;
}
