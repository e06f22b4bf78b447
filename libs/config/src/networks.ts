import { BlockList } from 'node:net';
import {
  compatibleIpv4Of,
  ipAddressText,
  mappedIpv4Of,
  nat64Ipv4Of,
  parseIpAddress,
  sixToFourIpv4Of,
  withoutZone,
  type IpFamily,
  type ParsedIpAddress,
} from '@twofold/contracts';
import { makeExactValidator } from './env.js';

export type { IpFamily };

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

/** A host as a URL or a resolver gives it, as the address a connection to it reaches. */
function hostAddressOf(text: string): ParsedIpAddress | undefined {
  let host = text.trim();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const ip = parseIpAddress(withoutZone(host));
  return ip && (mappedIpv4Of(ip) ?? ip);
}

/**
 * `text` as an IP address in one spelling, or undefined when it is not one: IPv4 dotted, IPv6 as
 * the URL standard writes it, and an IPv4-mapped IPv6 address (`::ffff:169.254.169.254`,
 * `::ffff:a9fe:a9fe`) as the IPv4 address a connection to it reaches. Brackets (`[fe80::1]`, as
 * a URL host) and a zone (`%eth0`) are dropped. Other IPv6 forms that embed an IPv4 address
 * (NAT64, 6to4, IPv4-compatible) stay IPv6: a connection to one goes to a gateway or relay
 * first (createNetworkDenylist still checks the IPv4 address it embeds).
 */
export function canonicalAddress(text: string): IpAddress | undefined {
  const ip = hostAddressOf(text);
  return ip && { address: ipAddressText(ip), family: ip.family };
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
  let ip = parseIpAddress(addressText);
  if (!ip)
    throw new Error(`"${trimmed}" is not a network: "${addressText}" is not an IP address; ${example}`);
  const max = ip.family === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix <= max)) throw new Error(`"${trimmed}": the prefix must be a whole number from 0 to ${max}`);
  }
  // A mapped network of /96 or longer holds only mapped addresses: it is an IPv4 network.
  const mapped = mappedIpv4Of(ip);
  if (mapped && prefix >= 96) {
    ip = mapped;
    prefix -= 96;
  }
  const address = ipAddressText(ip);
  return { address, family: ip.family, prefix, cidr: `${address}/${prefix}` };
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
   * address. An IPv4-mapped IPv6 address is its IPv4 address; an IPv6 address that embeds an
   * IPv4 address (NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, IPv4-compatible `::/96`) is denied
   * when either of the two is in a denied network.
   */
  deniedNetworkOf(address: string): string | undefined;
  /**
   * The same, with `embedded` set when it is the IPv4 address `address` embeds that lies in
   * the network, so a refusal can say why `64:ff9b::a9fe:a9fe` is in 169.254.0.0/16.
   */
  denialOf(address: string): { network: string; embedded?: string } | undefined;
}

/**
 * IPv6 forms whose packets can end up at the IPv4 address they embed: through a NAT64 gateway, a
 * 6to4 relay, or an old stack that tunnels IPv4-compatible addresses. Which of them a network
 * honours is not known here, so each is taken as reaching its IPv4 host.
 */
const EMBEDDED_IPV4_FORMS = [nat64Ipv4Of, sixToFourIpv4Of, compatibleIpv4Of] as const;

/**
 * A denylist of `networks` (CIDRs, as networkList() reads them), matched by Node's
 * `net.BlockList`. Pure: no I/O, the same answer for the same address. An IPv4 address and its
 * IPv4-mapped IPv6 form are one address, so an IPv6 network that holds the whole mapped range
 * (`::/0`) holds every IPv4 address too. An address is matched first as itself, then as the IPv4
 * address it embeds (EMBEDDED_IPV4_FORMS): `64:ff9b::a9fe:a9fe` is in 169.254.0.0/16. Throws on a
 * network parseNetwork() refuses.
 */
export function createNetworkDenylist(networks: readonly string[]): NetworkDenylist {
  const lists = networks.map((text) => {
    const network = parseNetwork(text);
    const list = new BlockList();
    list.addSubnet(network.address, network.prefix, network.family);
    return { cidr: network.cidr, list };
  });
  const networkOf = (address: ParsedIpAddress) =>
    lists.find((n) => n.list.check(ipAddressText(address), address.family))?.cidr;
  const denialOf: NetworkDenylist['denialOf'] = (text) => {
    const ip = hostAddressOf(text);
    if (!ip) return undefined;
    const own = networkOf(ip);
    if (own) return { network: own };
    for (const embeddedOf of EMBEDDED_IPV4_FORMS) {
      const embedded = embeddedOf(ip);
      if (!embedded) continue;
      const network = networkOf(embedded);
      if (network) return { network, embedded: ipAddressText(embedded) };
    }
    return undefined;
  };
  return {
    networks: Object.freeze(lists.map((n) => n.cidr)),
    deniedNetworkOf: (text) => denialOf(text)?.network,
    denialOf,
  };
}
