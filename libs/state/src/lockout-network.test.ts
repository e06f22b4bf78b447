import ipaddr from 'ipaddr.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lockoutSourceOf } from './lockout-network.js';

const NAT64_PREFIX = ipaddr.IPv6.parseCIDR('64:ff9b::/96');

describe('lockoutSourceOf', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7', '203.0.113.0/24'],
    [' 203.0.113.7 ', '203.0.113.7', '203.0.113.0/24'],
    ['0.0.0.0', '0.0.0.0', '0.0.0.0/24'],
    ['255.255.255.255', '255.255.255.255', '255.255.255.0/24'],
    ['::ffff:192.0.2.1', '192.0.2.1', '192.0.2.0/24'],
    ['::FFFF:c000:0201', '192.0.2.1', '192.0.2.0/24'],
    // NAT64 well-known prefix (RFC 6052): the embedded IPv4 host and its /24.
    ['64:ff9b::192.0.2.33', '192.0.2.33', '192.0.2.0/24'],
    ['64:FF9B:0:0:0:0:C000:221', '192.0.2.33', '192.0.2.0/24'],
    ['64:ff9b::203.0.113.7', '203.0.113.7', '203.0.113.0/24'],
    // Not the well-known /96: local-use 64:ff9b:1::/48 (RFC 8215), bits set past the prefix.
    ['64:ff9b:1::c000:221', '64:ff9b:1::c000:221', '64:ff9b:1::/64'],
    ['64:ff9b::1:c000:221', '64:ff9b::1:c000:221', '64:ff9b::/64'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', '2001:db8::/64'],
    ['2001:db8::0:1', '2001:db8::1', '2001:db8::/64'],
    ['2001:0db8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', '2001:db8::/64'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1', '2001:0:0:1::/64'],
    ['fe80::1%eth0', 'fe80::1', 'fe80::/64'],
    ['::', '::', '::/64'],
    ['::1', '::1', '::/64'],
    ['::192.0.2.1', '::c000:201', '::/64'],
    ['1::', '1::', '1::/64'],
    [
      '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff',
      '2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff',
      '2001:db8:aaaa:bbbb::/64',
    ],
  ])('%s → %s in %s', (raw, ip, network) => {
    expect(lockoutSourceOf(raw)).toEqual({ ip, network });
  });

  it.each(['', 'localhost', '1.2.3', '01.2.3.4', '1.2.3.256', '1:2:3:4:5:6:7:8:9', '1::2::3', 'gggg::1'])(
    'refuses %j',
    (raw) => {
      expect(lockoutSourceOf(raw)).toBeUndefined();
    },
  );

  it('agrees with ipaddr.js on any IPv6 address', () => {
    fc.assert(
      fc.property(fc.ipV6(), (raw) => {
        // ipaddr.js reads the deprecated IPv4-compatible form (::192.0.2.1) as IPv4-mapped;
        // RFC 4291 does not (it is ::c000:201, checked in the table above).
        fc.pre(!raw.includes('.') || /ffff:[\d.]+$/i.test(raw));
        const parsed = ipaddr.process(raw);
        // ipaddr.js keeps NAT64 addresses IPv6 (the well-known /96 is checked in the table above).
        fc.pre(!(parsed instanceof ipaddr.IPv6 && parsed.match(NAT64_PREFIX)));
        const source = lockoutSourceOf(raw)!;
        expect(source.ip).toBe(parsed.toString());
        const prefix = parsed.kind() === 'ipv4' ? 24 : 64;
        const [base] = ipaddr.parseCIDR(`${parsed.toString()}/${prefix}`);
        const networkBase = ipaddr.IPv4.isValid(parsed.toString())
          ? ipaddr.IPv4.networkAddressFromCIDR(`${parsed.toString()}/24`).toString()
          : ipaddr.IPv6.networkAddressFromCIDR(`${base.toString()}/64`).toString();
        expect(source.network).toBe(`${networkBase}/${prefix}`);
      }),
      { numRuns: 2000 },
    );
  });
});
