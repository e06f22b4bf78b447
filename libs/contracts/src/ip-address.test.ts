import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compatibleIpv4Of,
  expandedIpAddressText,
  ipAddressText,
  mappedIpv4Of,
  nat64Ipv4Of,
  networkAddressOf,
  parseIpAddress,
  sixToFourIpv4Of,
  withoutZone,
  type ParsedIpAddress,
} from './index.js';

const parsed = (text: string): ParsedIpAddress => {
  const ip = parseIpAddress(text);
  if (!ip) throw new Error(`${text} should parse`);
  return ip;
};
const textOf = (ip: ParsedIpAddress | undefined) => ip && ipAddressText(ip);

describe('parseIpAddress', () => {
  it.each([
    ['192.0.2.1', 'ipv4', '192.0.2.1', '192.0.2.1'],
    ['0.0.0.0', 'ipv4', '0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', 'ipv4', '255.255.255.255', '255.255.255.255'],
    ['::', 'ipv6', '::', '0000:0000:0000:0000:0000:0000:0000:0000'],
    ['::1', 'ipv6', '::1', '0000:0000:0000:0000:0000:0000:0000:0001'],
    ['1::', 'ipv6', '1::', '0001:0000:0000:0000:0000:0000:0000:0000'],
    ['2001:DB8:0:0:0:0:0:1', 'ipv6', '2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001'],
    ['2001:0db8::0:1', 'ipv6', '2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001'],
    // RFC 5952: the first of two equally long zero runs is compressed; a single zero group is not.
    ['2001:db8:0:0:1:0:0:1', 'ipv6', '2001:db8::1:0:0:1', '2001:0db8:0000:0000:0001:0000:0000:0001'],
    ['2001:db8:0:1:1:1:1:1', 'ipv6', '2001:db8:0:1:1:1:1:1', '2001:0db8:0000:0001:0001:0001:0001:0001'],
    ['1:2:3:4:5:6:7::', 'ipv6', '1:2:3:4:5:6:7:0', '0001:0002:0003:0004:0005:0006:0007:0000'],
    ['::2:3:4:5:6:7:8', 'ipv6', '0:2:3:4:5:6:7:8', '0000:0002:0003:0004:0005:0006:0007:0008'],
    // A dotted IPv4 tail is two groups; the text is never dotted, mapped or not.
    ['::ffff:192.0.2.1', 'ipv6', '::ffff:c000:201', '0000:0000:0000:0000:0000:ffff:c000:0201'],
    ['::192.0.2.1', 'ipv6', '::c000:201', '0000:0000:0000:0000:0000:0000:c000:0201'],
    ['64:ff9b::192.0.2.33', 'ipv6', '64:ff9b::c000:221', '0064:ff9b:0000:0000:0000:0000:c000:0221'],
    ['1:2:3:4:5:6:1.2.3.4', 'ipv6', '1:2:3:4:5:6:102:304', '0001:0002:0003:0004:0005:0006:0102:0304'],
  ])('reads %j as %s, %s, expanded %s', (input, family, text, expanded) => {
    const ip = parsed(input);
    expect(ip.family).toBe(family);
    expect(ip.bytes).toHaveLength(family === 'ipv4' ? 4 : 16);
    expect(ipAddressText(ip)).toBe(text);
    expect(expandedIpAddressText(ip)).toBe(expanded);
  });

  it.each([
    ['', 'empty'],
    ['localhost', 'a name'],
    ['1.2.3', 'three octets'],
    ['1.2.3.256', 'an octet past 255'],
    ['01.2.3.4', 'a leading zero (octal to some parsers)'],
    ['0xc0000201', 'hex IPv4'],
    ['3221225985', 'a 32-bit number'],
    ['192.0.2.1 ', 'surrounding space'],
    ['[::1]', 'brackets'],
    ['fe80::1%eth0', 'a zone'],
    ['192.0.2.0/24', 'a prefix'],
    [':::', 'three colons'],
    ['1::2::3', 'two ::'],
    ['1:2:3:4:5:6:7:8:9', 'nine groups'],
    ['1::2:3:4:5:6:7:8', ':: standing for no group'],
    [':1:2:3:4:5:6:7', 'a lone leading colon'],
    ['1:2:3:4:5:6:7:', 'a lone trailing colon'],
    ['12345::', 'a five-digit group'],
    ['gggg::1', 'not hex'],
    ['::ffff:01.2.3.4', 'a leading zero in the IPv4 tail'],
    ['1:2:3:4:5:6::1.2.3.4', 'an IPv4 tail making nine groups'],
    ['1.2.3.4::', 'an IPv4 head'],
  ])('refuses %j (%s)', (input) => {
    expect(parseIpAddress(input)).toBeUndefined();
  });

  it("accepts exactly what Node's isIPv4 and isIPv6 accept, less zones, and writes IPv6 as the URL standard", () => {
    const hexDigitOrPunct = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''));
    const mutated = fc
      .tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.nat(), fc.constantFrom(...'0:.f1'.split('')), fc.boolean())
      .map(([text, at, c, insert]) => {
        const i = at % (text.length + 1);
        return text.slice(0, i) + c + text.slice(i + (insert ? 0 : 1));
      });
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.ipV6(), mutated, fc.string({ unit: hexDigitOrPunct })),
        (text) => {
          const ip = parseIpAddress(text);
          expect(ip !== undefined).toBe(isIPv4(text) || isIPv6(text));
          if (ip?.family === 'ipv6')
            expect(ipAddressText(ip)).toBe(new URL(`http://[${text}]/`).hostname.slice(1, -1));
          if (ip?.family === 'ipv4') expect(ipAddressText(ip)).toBe(text);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('withoutZone', () => {
  it.each([
    ['fe80::1%eth0', 'fe80::1'],
    ['fe80::1%', 'fe80::1'],
    ['fe80::1%a%b', 'fe80::1'],
    ['fe80::1', 'fe80::1'],
    ['', ''],
  ])('%j → %j', (input, output) => {
    expect(withoutZone(input)).toBe(output);
  });
});

describe('networkAddressOf', () => {
  it.each([
    ['203.0.113.7', 24, '203.0.113.0'],
    ['203.0.113.7', 32, '203.0.113.7'],
    ['203.0.113.7', 0, '0.0.0.0'],
    ['169.254.169.254', 12, '169.240.0.0'],
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff', 64, '2001:db8:aaaa:bbbb::'],
    ['2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff', 50, '2001:db8:aaaa:8000::'],
    ['fe80::1', 10, 'fe80::'],
    ['fe80::1', 128, 'fe80::1'],
  ])('%s/%i starts at %s', (input, prefix, network) => {
    const ip = parsed(input);
    expect(ipAddressText(networkAddressOf(ip, prefix))).toBe(network);
    // A new address: the one given is left as it was.
    expect(ipAddressText(ip)).toBe(ipAddressText(parsed(input)));
  });
});

describe('embedded IPv4', () => {
  // Each form, its edges, and addresses of the other forms: a form names only its own.
  it.each([
    // [address, mapped, NAT64, IPv4-compatible, 6to4]
    ['::ffff:169.254.169.254', '169.254.169.254', undefined, undefined, undefined],
    ['::ffff:0:0', '0.0.0.0', undefined, undefined, undefined],
    ['::fffe:a9fe:a9fe', undefined, undefined, undefined, undefined],
    ['::1:ffff:a9fe:a9fe', undefined, undefined, undefined, undefined],
    ['64:ff9b::a9fe:a9fe', undefined, '169.254.169.254', undefined, undefined],
    ['64:ff9b::192.0.2.33', undefined, '192.0.2.33', undefined, undefined],
    ['64:ff9b::', undefined, '0.0.0.0', undefined, undefined],
    // RFC 8215's local-use prefix, and bits set past the well-known /96.
    ['64:ff9b:1::a9fe:a9fe', undefined, undefined, undefined, undefined],
    ['64:ff9b::1:a9fe:a9fe', undefined, undefined, undefined, undefined],
    ['::a9fe:a9fe', undefined, undefined, '169.254.169.254', undefined],
    ['::192.0.2.1', undefined, undefined, '192.0.2.1', undefined],
    ['::0.0.0.2', undefined, undefined, '0.0.0.2', undefined],
    // The unspecified and loopback addresses are themselves, not 0.0.0.0 and 0.0.0.1.
    ['::', undefined, undefined, undefined, undefined],
    ['::1', undefined, undefined, undefined, undefined],
    ['::1:0:0:1', undefined, undefined, undefined, undefined],
    ['2002:a9fe:a9fe::1', undefined, undefined, undefined, '169.254.169.254'],
    ['2002:c000:201:ffff:ffff:ffff:ffff:ffff', undefined, undefined, undefined, '192.0.2.1'],
    ['2002::', undefined, undefined, undefined, '0.0.0.0'],
    ['2003:a9fe:a9fe::1', undefined, undefined, undefined, undefined],
    ['2001:db8::a9fe:a9fe', undefined, undefined, undefined, undefined],
    ['169.254.169.254', undefined, undefined, undefined, undefined],
  ])('%s: mapped %s, NAT64 %s, compatible %s, 6to4 %s', (input, mapped, nat64, compatible, sixToFour) => {
    const ip = parsed(input);
    expect(textOf(mappedIpv4Of(ip))).toBe(mapped);
    expect(textOf(nat64Ipv4Of(ip))).toBe(nat64);
    expect(textOf(compatibleIpv4Of(ip))).toBe(compatible);
    expect(textOf(sixToFourIpv4Of(ip))).toBe(sixToFour);
    for (const embedded of [mappedIpv4Of(ip), nat64Ipv4Of(ip), compatibleIpv4Of(ip), sixToFourIpv4Of(ip)])
      if (embedded) expect(embedded).toMatchObject({ family: 'ipv4', bytes: { length: 4 } });
  });
});
