import { describe, expect, it } from 'vitest';
import {
  canonicalAddress,
  ConfigError,
  createNetworkDenylist,
  DEFAULT_WEBHOOK_DENIED_NETWORKS,
  DEFAULT_WEBHOOK_DENYLIST,
  networkList,
  parseNetwork,
  readEnv,
  webhookTargetEnvSpec,
} from './index.js';

describe('canonicalAddress', () => {
  it.each([
    ['169.254.169.254', '169.254.169.254', 'ipv4'],
    [' 10.0.0.1 ', '10.0.0.1', 'ipv4'],
    ['FD00:EC2:0:0:0:0:0:254', 'fd00:ec2::254', 'ipv6'],
    ['[fe80::1]', 'fe80::1', 'ipv6'],
    ['fe80::1%eth0', 'fe80::1', 'ipv6'],
    ['::ffff:169.254.169.254', '169.254.169.254', 'ipv4'],
    ['::ffff:a9fe:a9fe', '169.254.169.254', 'ipv4'],
    ['0:0:0:0:0:FFFF:A9FE:A9FE', '169.254.169.254', 'ipv4'],
    ['[::ffff:127.0.0.1]', '127.0.0.1', 'ipv4'],
    // IPv4-compatible (deprecated) and NAT64 forms are other IPv6 addresses, not the IPv4 one.
    ['::a9fe:a9fe', '::a9fe:a9fe', 'ipv6'],
    ['64:ff9b::a9fe:a9fe', '64:ff9b::a9fe:a9fe', 'ipv6'],
  ])('spells %j as %s (%s)', (input, address, family) => {
    expect(canonicalAddress(input)).toEqual({ address, family });
  });

  it.each(['', 'localhost', 'jira.example.com', '169.254.169', '169.254.169.256', '01.2.3.4', '::g'])(
    'is undefined for %j (not an IP address)',
    (input) => expect(canonicalAddress(input)).toBeUndefined(),
  );
});

describe('parseNetwork', () => {
  it.each([
    ['169.254.0.0/16', '169.254.0.0/16', 'ipv4'],
    [' 10.0.0.0/8 ', '10.0.0.0/8', 'ipv4'],
    ['0.0.0.0/0', '0.0.0.0/0', 'ipv4'],
    ['127.0.0.1', '127.0.0.1/32', 'ipv4'],
    ['FE80::/10', 'fe80::/10', 'ipv6'],
    ['fd00:ec2:0::254/128', 'fd00:ec2::254/128', 'ipv6'],
    ['::/128', '::/128', 'ipv6'],
    ['::', '::/128', 'ipv6'],
    ['::ffff:169.254.0.0/112', '169.254.0.0/16', 'ipv4'],
    ['::ffff:a9fe:a9fe/128', '169.254.169.254/32', 'ipv4'],
    ['::ffff:0:0/96', '0.0.0.0/0', 'ipv4'],
    // Shorter than /96 it holds more than mapped addresses: it stays IPv6.
    ['::ffff:0:0/95', '::ffff:0:0/95', 'ipv6'],
  ])('reads %j as %s', (input, cidr, family) => {
    expect(parseNetwork(input)).toMatchObject({ cidr, family });
  });

  it.each([
    ['10.0.0.0/33', 'the prefix must be a whole number from 0 to 32'],
    ['fe80::/129', 'the prefix must be a whole number from 0 to 128'],
    ['10.0.0.0/', 'the prefix must be a whole number from 0 to 32'],
    ['10.0.0.0/-1', 'the prefix must be a whole number from 0 to 32'],
    ['10.0.0.0/8.5', 'the prefix must be a whole number from 0 to 32'],
    ['10.0.0.0/8/8', 'is not a network'],
    ['10.0.0/8', '"10.0.0" is not an IP address'],
    ['jira/24', '"jira" is not an IP address'],
    ['fe80::%eth0/64', 'is not a network'],
    ['[fe80::]/10', 'is not a network'],
  ])('refuses %j: %s', (input, message) => {
    expect(() => parseNetwork(input)).toThrow(message);
  });
});

describe('WEBHOOK_DENIED_NETWORKS', () => {
  const read = (value?: string) =>
    readEnv(webhookTargetEnvSpec, value === undefined ? {} : { WEBHOOK_DENIED_NETWORKS: value })
      .WEBHOOK_DENIED_NETWORKS;

  it('defaults to the link-local and metadata ranges, and the same list written out reads the same', () => {
    expect(read()).toEqual([
      '169.254.0.0/16',
      'fe80::/10',
      'fd00:ec2::254/128',
      '100.100.100.200/32',
      '0.0.0.0/8',
      '::/128',
    ]);
    expect(read('169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,0.0.0.0/8,::/128')).toEqual(
      read(),
    );
    expect(DEFAULT_WEBHOOK_DENIED_NETWORKS).toEqual(read());
  });

  it('takes added ranges, spells them one way, drops repeats and empty entries; empty denies nothing', () => {
    expect(read(' 169.254.0.0/16 , 127.0.0.0/8,,::1, ::ffff:10.0.0.0/104,127.0.0.0/8')).toEqual([
      '169.254.0.0/16',
      '127.0.0.0/8',
      '::1/128',
      '10.0.0.0/8',
    ]);
    expect(read('')).toEqual([]);
    expect(read(' ')).toEqual([]);
  });

  it('stops start-up with one message naming the variable and every bad entry', () => {
    let error: unknown;
    try {
      read('169.254.0.0/16,10.0.0.0/33,metadata.internal');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'WEBHOOK_DENIED_NETWORKS: must be a comma-separated list of networks (CIDR, e.g. 169.254.0.0/16,fe80::/10) or empty: ' +
        '"10.0.0.0/33": the prefix must be a whole number from 0 to 32; ' +
        '"metadata.internal" is not a network: "metadata.internal" is not an IP address; write address/prefix, e.g. 169.254.0.0/16 or fe80::/10',
    ]);
  });

  it('is an envalid validator like the others (a default given as a list)', () => {
    expect(readEnv({ X: networkList({ default: ['10.0.0.0/8'] }) }, {}).X).toEqual(['10.0.0.0/8']);
  });
});

describe('createNetworkDenylist', () => {
  it.each([
    // The metadata services and the edges of each default range.
    ['169.254.169.254', '169.254.0.0/16'],
    ['169.254.0.0', '169.254.0.0/16'],
    ['169.254.255.255', '169.254.0.0/16'],
    ['169.253.255.255', undefined],
    ['169.255.0.0', undefined],
    ['fd00:ec2::254', 'fd00:ec2::254/128'],
    ['FD00:0EC2:0000:0000:0000:0000:0000:0254', 'fd00:ec2::254/128'],
    ['fd00:ec2::253', undefined],
    ['fd00:ec2::255', undefined],
    ['fe80::1', 'fe80::/10'],
    ['[fe80::a9fe:a9fe]', 'fe80::/10'],
    ['fe80::1%eth0', 'fe80::/10'],
    ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe80::/10'],
    ['fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', undefined],
    ['fec0::', undefined],
    ['0.0.0.0', '0.0.0.0/8'],
    ['0.255.255.255', '0.0.0.0/8'],
    ['1.0.0.0', undefined],
    ['::', '::/128'],
    ['::1', undefined],
    // IPv4-mapped IPv6: the IPv4 address it reaches.
    ['::ffff:169.254.169.254', '169.254.0.0/16'],
    ['::ffff:a9fe:a9fe', '169.254.0.0/16'],
    ['[::ffff:169.254.169.254]', '169.254.0.0/16'],
    ['::ffff:0.0.0.0', '0.0.0.0/8'],
    ['::ffff:10.0.0.1', undefined],
    // IPv6 forms that embed an IPv4 address, denied when that address is: NAT64 (64:ff9b::/96),
    // 6to4 (2002::/16), IPv4-compatible (::/96 but :: and ::1).
    ['64:ff9b::a9fe:a9fe', '169.254.0.0/16'],
    ['64:ff9b::169.254.169.254', '169.254.0.0/16'],
    ['[64:FF9B::A9FE:A9FE]', '169.254.0.0/16'],
    ['64:ff9b::6464:64c8', '100.100.100.200/32'],
    ['64:ff9b::', '0.0.0.0/8'],
    ['2002:a9fe:a9fe::1', '169.254.0.0/16'],
    ['2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff', '169.254.0.0/16'],
    ['[2002:a9fe:a9fe::]', '169.254.0.0/16'],
    ['2002::1', '0.0.0.0/8'],
    ['::a9fe:a9fe', '169.254.0.0/16'],
    ['::169.254.169.254', '169.254.0.0/16'],
    ['[::a9fe:a9fe]', '169.254.0.0/16'],
    ['::0.0.0.2', '0.0.0.0/8'],
    ['64:ff9b::a00:1', undefined],
    ['2002:a00:1::1', undefined],
    ['::a00:1', undefined],
    ['64:ff9b::5db8:d822', undefined],
    // Not one of those forms: RFC 8215's local-use NAT64 prefix, bits past the /96, a near miss.
    ['64:ff9b:1::a9fe:a9fe', undefined],
    ['64:ff9b::1:a9fe:a9fe', undefined],
    ['2003:a9fe:a9fe::1', undefined],
    ['::1:a9fe:a9fe', undefined],
    // What a company's webhooks normally reach stays allowed by default.
    ['127.0.0.1', undefined],
    ['10.1.2.3', undefined],
    ['172.16.0.1', undefined],
    ['192.168.1.10', undefined],
    ['fd12:3456::1', undefined],
    ['93.184.216.34', undefined],
    ['2606:2800:220:1::1', undefined],
    // Not an address: a host name is checked once it resolves.
    ['jira.internal', undefined],
    ['', undefined],
  ])('%s → %s', (address, network) => {
    expect(DEFAULT_WEBHOOK_DENYLIST.deniedNetworkOf(address)).toBe(network);
  });

  it('denies what an operator adds, naming the network that matched, and nothing when empty', () => {
    const strict = createNetworkDenylist([...DEFAULT_WEBHOOK_DENIED_NETWORKS, '127.0.0.0/8', '::1/128']);
    expect(strict.deniedNetworkOf('127.0.0.1')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('127.255.255.255')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('::ffff:127.0.0.1')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('::1')).toBe('::1/128');
    expect(strict.deniedNetworkOf('128.0.0.0')).toBeUndefined();
    expect(strict.deniedNetworkOf('169.254.169.254')).toBe('169.254.0.0/16');

    const none = createNetworkDenylist([]);
    expect(none.networks).toEqual([]);
    expect(none.deniedNetworkOf('169.254.169.254')).toBeUndefined();
  });

  it('matches a mapped network written as IPv6 against IPv4 addresses, and the other way round', () => {
    const mapped = createNetworkDenylist(['::ffff:192.168.0.0/112']);
    expect(mapped.networks).toEqual(['192.168.0.0/16']);
    expect(mapped.deniedNetworkOf('192.168.3.4')).toBe('192.168.0.0/16');
    expect(mapped.deniedNetworkOf('::ffff:c0a8:304')).toBe('192.168.0.0/16');
    expect(mapped.deniedNetworkOf('192.169.0.1')).toBeUndefined();
    // An IPv6 network holding the whole mapped range holds every IPv4 address too (BlockList).
    expect(createNetworkDenylist(['::/0']).deniedNetworkOf('203.0.113.9')).toBe('::/0');
    expect(createNetworkDenylist(['2001:db8::/32']).deniedNetworkOf('203.0.113.9')).toBeUndefined();
  });

  it('denies an embedded IPv4 address in a network the operator adds, and names the address itself first', () => {
    const strict = createNetworkDenylist([...DEFAULT_WEBHOOK_DENIED_NETWORKS, '127.0.0.0/8', '::1/128']);
    expect(strict.deniedNetworkOf('64:ff9b::7f00:1')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('2002:7f00:1::1')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('::7f00:1')).toBe('127.0.0.0/8');
    expect(strict.deniedNetworkOf('::127.0.0.2')).toBe('127.0.0.0/8');
    // ::1 is IPv6's loopback, not IPv4-compatible 0.0.0.1.
    expect(strict.deniedNetworkOf('::1')).toBe('::1/128');
    expect(createNetworkDenylist(['0.0.0.0/8']).deniedNetworkOf('::1')).toBeUndefined();
    expect(createNetworkDenylist(['0.0.0.0/8']).deniedNetworkOf('::')).toBeUndefined();

    for (const networks of [
      ['64:ff9b::/96', '169.254.0.0/16'],
      ['169.254.0.0/16', '64:ff9b::/96'],
    ])
      expect(createNetworkDenylist(networks).deniedNetworkOf('64:ff9b::a9fe:a9fe')).toBe('64:ff9b::/96');
    expect(createNetworkDenylist(['2002::/16']).deniedNetworkOf('2002:a9fe:a9fe::1')).toBe('2002::/16');
  });

  it('tells when it is the IPv4 address embedded in the address that is denied', () => {
    expect(DEFAULT_WEBHOOK_DENYLIST.denialOf('64:ff9b::a9fe:a9fe')).toEqual({
      network: '169.254.0.0/16',
      embedded: '169.254.169.254',
    });
    expect(DEFAULT_WEBHOOK_DENYLIST.denialOf('169.254.169.254')).toEqual({ network: '169.254.0.0/16' });
    expect(DEFAULT_WEBHOOK_DENYLIST.denialOf('::ffff:169.254.169.254')).toEqual({
      network: '169.254.0.0/16',
    });
    expect(DEFAULT_WEBHOOK_DENYLIST.denialOf('fe80::1')).toEqual({ network: 'fe80::/10' });
    expect(DEFAULT_WEBHOOK_DENYLIST.denialOf('10.0.0.1')).toBeUndefined();
  });

  it('refuses a network it cannot read', () => {
    expect(() => createNetworkDenylist(['10.0.0.0/40'])).toThrow(/from 0 to 32/);
  });
});
