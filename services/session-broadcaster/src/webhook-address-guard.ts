import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import type { NetworkDenylist } from '@twofold/config';

/**
 * A webhook's host is, or resolves to, an address in WEBHOOK_DENIED_NETWORKS. Not retried: the
 * request was never sent, and the app's URL (or its DNS) must change before one can be.
 */
export class WebhookAddressDeniedError extends Error {
  readonly code = 'TWOFOLD_WEBHOOK_ADDRESS_DENIED';
  readonly retriable = false;
  constructor(
    readonly host: string,
    readonly address: string,
    readonly network: string,
    /** The IPv4 address `address` embeds, when that is what lies in the network. */
    readonly embedded?: string,
  ) {
    super(
      `${host === address ? address : `${host} resolves to ${address}, which`} is in ${network}` +
        `${embedded ? ` (as ${embedded}, the IPv4 address it embeds)` : ''}, a network ` +
        'webhooks are never sent to (WEBHOOK_DENIED_NETWORKS); not sent, not retried',
    );
    this.name = 'WebhookAddressDeniedError';
  }
}

/** dns.lookup with `all: true`, or a stand-in for it. */
export type ResolveAll = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/** The refusal of a connection to `address`, or undefined when it is allowed. */
function deniedError(
  denylist: NetworkDenylist,
  host: string,
  address: string,
): WebhookAddressDeniedError | undefined {
  const denial = denylist.denialOf(address);
  return denial && new WebhookAddressDeniedError(host, address, denial.network, denial.embedded);
}

/**
 * A `lookup` for net.connect that resolves every address of the name and refuses the name when
 * any of them is denied, so the address connected to is the one checked (a name that answers
 * differently from one lookup to the next, DNS rebinding, cannot slip a denied address past a
 * check made earlier), and a fallback to another address of the name (happy eyeballs) cannot
 * reach one either.
 */
export function guardedLookup(denylist: NetworkDenylist, resolve: ResolveAll = dnsLookup): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      for (const { address } of addresses) {
        const denied = deniedError(denylist, hostname, address);
        if (denied) return callback(denied, '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
}

/**
 * An undici connector that never opens a connection to a denied address: a host that is an IP
 * address is checked here (Node connects to one without a lookup), a host name by guardedLookup
 * on each connection.
 */
export function guardedConnector(options: {
  denylist: NetworkDenylist;
  timeoutMs: number;
  resolve?: ResolveAll;
}): buildConnector.connector {
  const connect = buildConnector({
    timeout: options.timeoutMs,
    lookup: guardedLookup(options.denylist, options.resolve),
  });
  return (target, callback) => {
    if (isIP(target.hostname)) {
      const denied = deniedError(options.denylist, target.hostname, target.hostname);
      if (denied) {
        // Asynchronously, as a refused connection would fail.
        process.nextTick(() => callback(denied, null));
        return;
      }
    }
    connect(target, callback);
  };
}
