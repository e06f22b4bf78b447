import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { makeExactValidator } from './env.js';

export type IpFamily = 'ipv4' | 'ipv6';

/** An IP address in one spelling, and its family. */
export interface IpAddress {
  readonly address: string;
  readonly family: IpFamily;
}

/** An IP network: its first address, prefix length and family, and the two as one CIDR. */
export interface IpNetwork extends IpAddress {
  readonly prefix: number;
  /** `address/prefix`, e.g. `169.254.0.0/16`, `fe80::/10`. */
  readonly cidr: string;
}

/** An IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2) as the URL standard spells it: `::ffff:a9fe:a9fe`. */
const MAPPED_IPV4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/** IPv6 in the URL standard's spelling (lower case, longest zero run compressed, no dotted tail). */
function spellIpv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

function mappedIpv4(spelledIpv6: string): string | undefined {
  const match = MAPPED_IPV4.exec(spelledIpv6);
  if (!match) return undefined;
  const high = parseInt(match[1]!, 16);
  const low = parseInt(match[2]!, 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
}

/**
 * `text` as an IP address in one spelling, or undefined when it is not one: IPv4 dotted, IPv6 as
 * the URL standard writes it, and an IPv4-mapped IPv6 address (`::ffff:169.254.169.254`,
 * `::ffff:a9fe:a9fe`) as the IPv4 address a connection to it reaches. Brackets (`[fe80::1]`, as
 * a URL host) and a zone (`%eth0`) are dropped.
 */
export function canonicalAddress(text: string): IpAddress | undefined {
  let host = text.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const zone = host.indexOf('%');
  if (zone >= 0) host = host.slice(0, zone);
  if (isIPv4(host)) return { address: host, family: 'ipv4' };
  if (!isIPv6(host)) return undefined;
  const spelled = spellIpv6(host);
  const ipv4 = mappedIpv4(spelled);
  return ipv4 ? { address: ipv4, family: 'ipv4' } : { address: spelled, family: 'ipv6' };
}

/**
 * Parses one network, `address/prefix` (a bare address is the network of that address alone),
 * and spells it one way. An IPv4-mapped network (`::ffff:169.254.0.0/112`) is the IPv4 network
 * it maps (`169.254.0.0/16`). Throws an Error saying what is wrong with `text`.
 */
export function parseNetwork(text: string): IpNetwork {
  const trimmed = text.trim();
  const [addressText = '', prefixText, ...rest] = trimmed.split('/');
  const example = 'write address/prefix, e.g. 169.254.0.0/16 or fe80::/10';
  if (rest.length > 0 || addressText.includes('%') || addressText.includes('['))
    throw new Error(`"${trimmed}" is not a network: ${example}`);
  let address: string;
  let family: IpFamily;
  let mapped = false;
  if (isIPv4(addressText)) {
    address = addressText;
    family = 'ipv4';
  } else if (isIPv6(addressText)) {
    address = spellIpv6(addressText);
    family = 'ipv6';
    mapped = mappedIpv4(address) !== undefined;
  } else {
    throw new Error(`"${trimmed}" is not a network: "${addressText}" is not an IP address; ${example}`);
  }
  const max = family === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix <= max)) throw new Error(`"${trimmed}": the prefix must be a whole number from 0 to ${max}`);
  }
  // A mapped network of /96 or longer holds only mapped addresses: it is an IPv4 network.
  if (mapped && prefix >= 96) {
    address = mappedIpv4(address)!;
    family = 'ipv4';
    prefix -= 96;
  }
  return { address, family, prefix, cidr: `${address}/${prefix}` };
}

/**
 * A comma-separated list of networks (CIDR), each spelled as parseNetwork() spells it, without
 * repeats; empty for none. A bad entry is named in the error, with what is wrong with it.
 */
export const networkList = makeExactValidator<readonly string[]>((input) => {
  const cidrs: string[] = [];
  const problems: string[] = [];
  for (const entry of input
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    try {
      cidrs.push(parseNetwork(entry).cidr);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  if (problems.length > 0)
    throw new Error(
      `must be a comma-separated list of networks (CIDR, e.g. 169.254.0.0/16,fe80::/10) or empty: ${problems.join('; ')}`,
    );
  return Object.freeze([...new Set(cidrs)]);
});

/** Networks that a process must not connect to. */
export interface NetworkDenylist {
  /** The networks, as parseNetwork() spells them. */
  readonly networks: readonly string[];
  /**
   * The network (CIDR) `address` lies in, or undefined when it lies in none or is not an IP
   * address. An IPv4-mapped IPv6 address is its IPv4 address.
   */
  deniedNetworkOf(address: string): string | undefined;
}

/**
 * A denylist of `networks` (CIDRs, as networkList() reads them), matched by Node's
 * `net.BlockList`. Pure: no I/O, the same answer for the same address. An IPv4 address and its
 * IPv4-mapped IPv6 form are one address, so an IPv6 network that holds the whole mapped range
 * (`::/0`) holds every IPv4 address too. Throws on a network parseNetwork() refuses.
 */
export function createNetworkDenylist(networks: readonly string[]): NetworkDenylist {
  const lists = networks.map((text) => {
    const network = parseNetwork(text);
    const list = new BlockList();
    list.addSubnet(network.address, network.prefix, network.family);
    return { cidr: network.cidr, list };
  });
  return {
    networks: Object.freeze(lists.map((n) => n.cidr)),
    deniedNetworkOf(text) {
      const ip = canonicalAddress(text);
      if (!ip) return undefined;
      return lists.find((n) => n.list.check(ip.address, ip.family))?.cidr;
    },
  };
}
