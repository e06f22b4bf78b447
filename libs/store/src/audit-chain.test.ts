import ipaddr from 'ipaddr.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GENESIS_HASH,
  MAX_JSON_DEPTH,
  UnstorableJsonError,
  canonicalIp,
  canonicalJson,
  chainDay,
  chainRowHash,
  storableText,
  type ChainedContent,
} from './audit-chain.js';

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: null } })).toBe('{"a":{"c":null,"d":[3,1]},"b":1}');
  });

  it('gives the same text for the same value whatever the key order', () => {
    expect(canonicalJson({ x: 1, y: { q: 'a', p: true } })).toBe(
      canonicalJson({ y: { p: true, q: 'a' }, x: 1 }),
    );
  });

  it('survives a round trip through JSON text (what reading jsonb back does)', () => {
    const value = {
      n: 1e21,
      small: 1e-7,
      big: Number.MAX_SAFE_INTEGER + 2,
      neg: -0,
      s: 'é\n"',
      list: [1.5, 'x'],
    };
    const once = canonicalJson(value);
    expect(canonicalJson(JSON.parse(once))).toBe(once);
  });

  it.each([
    ['NUL in a value', { a: 'x\u0000y' }, '{"a":"x\uFFFDy"}'],
    ['NUL in a key', { ['k\u0000']: 1 }, '{"k\uFFFD":1}'],
    ['a lone surrogate', { a: 'x\uD800' }, '{"a":"x\uFFFD"}'],
    ['non-finite numbers', { a: Number.NaN, b: Infinity }, '{"a":null,"b":null}'],
    ['undefined properties', { a: undefined, b: 1 }, '{"b":1}'],
  ])('makes %s storable', (_what, value, expected) => {
    expect(canonicalJson(value)).toBe(expected);
  });

  it(`refuses nesting deeper than ${MAX_JSON_DEPTH}`, () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(UnstorableJsonError);
    let ok: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = [ok];
    expect(() => canonicalJson(ok)).not.toThrow();
  });
});

describe('storableText', () => {
  it('keeps well-formed text as it is', () => {
    expect(storableText('alice 😀')).toBe('alice 😀');
  });
});

describe('canonicalIp', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001'],
    ['2001:DB8:0:0:0:0:0:1', '2001:0db8:0000:0000:0000:0000:0000:0001'],
    ['::', '0000:0000:0000:0000:0000:0000:0000:0000'],
    ['::1', '0000:0000:0000:0000:0000:0000:0000:0001'],
    ['fe80::', 'fe80:0000:0000:0000:0000:0000:0000:0000'],
    ['::ffff:192.0.2.1', '0000:0000:0000:0000:0000:ffff:c000:0201'],
    ['::ffff:c000:201', '0000:0000:0000:0000:0000:ffff:c000:0201'],
    ['1:2:3:4:5:6:1.2.3.4', '0001:0002:0003:0004:0005:0006:0102:0304'],
    ['192.0.2.0/24', '192.0.2.0/24'],
    ['192.0.2.1/32', '192.0.2.1'],
    ['2001:db8::/32', '2001:0db8:0000:0000:0000:0000:0000:0000/32'],
    ['192.0.2.1/024', '192.0.2.1/24'],
    // Every IPv6 form stays IPv6 here, embedded IPv4 or not: this is the text the chain covers.
    ['::FFFF:C000:201', '0000:0000:0000:0000:0000:ffff:c000:0201'],
    ['64:ff9b::192.0.2.1', '0064:ff9b:0000:0000:0000:0000:c000:0201'],
    ['::192.0.2.1', '0000:0000:0000:0000:0000:0000:c000:0201'],
    ['2002:c000:201::1', '2002:c000:0201:0000:0000:0000:0000:0001'],
    ['1:2:3:4:5:6:7::', '0001:0002:0003:0004:0005:0006:0007:0000'],
  ])('%s → %s', (input, expected) => {
    expect(canonicalIp(input)).toBe(expected);
  });

  it.each([
    'fe80::1%eth0',
    'not-an-ip',
    '1.2.3',
    '1::2::3',
    '1:2:3:4:5:6:7:8:9',
    ':1:2:3:4:5:6:7',
    '192.0.2.1/33',
    '2001:db8::/129',
    '12345::',
    '',
    ' 192.0.2.1',
    '[::1]',
    '01.2.3.4',
    '0xc0000201',
    '1::2:3:4:5:6:7:8',
    '192.0.2.1/',
  ])('%j is not an inet Postgres takes', (input) => {
    expect(canonicalIp(input)).toBeNull();
  });

  it('writes any IPv6 address with every group written out, as ipaddr.js does', () => {
    fc.assert(
      fc.property(fc.ipV6(), (raw) => {
        // ipaddr.js reads the IPv4-compatible form (::192.0.2.1) as IPv4-mapped; the table checks it.
        fc.pre(!raw.includes('.') || /ffff:[\d.]+$/i.test(raw));
        const groups = ipaddr.IPv6.parse(raw).toNormalizedString().split(':');
        expect(canonicalIp(raw)).toBe(groups.map((g) => g.padStart(4, '0')).join(':'));
      }),
      { numRuns: 2000 },
    );
  });

  it('passes null through', () => {
    expect(canonicalIp(null)).toBeNull();
  });
});

describe('chainDay', () => {
  it('is the UTC day', () => {
    expect(chainDay(new Date('2026-11-28T23:59:59.999-02:00'))).toBe('2026-11-29');
  });
});

describe('chainRowHash', () => {
  const row: ChainedContent = {
    seq: '1',
    eventId: 'e-1',
    occurredAt: '2026-11-28T09:00:00.000Z',
    receivedAt: '2026-11-28T09:00:01.000Z',
    type: 'twofold.login.failed',
    source: 'app/jira',
    appId: 'jira',
    username: 'alice',
    session: null,
    ip: '192.0.2.1',
    outcome: 'failure',
    decision: null,
    reason: 'bad_password',
    kafkaTopic: 'twofold.login.v1',
    kafkaPartition: 0,
    kafkaOffset: '41',
    eventJson: canonicalJson({ id: 'e-1', data: { ip: '192.0.2.1' } }),
  };
  const base = chainRowHash(GENESIS_HASH, row);

  it('is 32 bytes and deterministic', () => {
    expect(base).toHaveLength(32);
    expect(chainRowHash(GENESIS_HASH, { ...row })).toEqual(base);
  });

  it('does not depend on how the IP address is spelled, once canonical', () => {
    const spelled = (ip: string) => chainRowHash(GENESIS_HASH, { ...row, ip: canonicalIp(ip) });
    expect(spelled('2001:DB8:0:0::1')).toEqual(spelled('2001:db8::1'));
  });

  // Hashes of rows already chained, computed before canonicalIp moved onto @twofold/contracts:
  // an address spelled any way must give the same hash as it did then.
  it.each([
    ['192.0.2.1', 'b8c29e597a3993a1e37fd493d1ebe1bd690ed9b7434d6bf9dc6e14ed560fa2a0'],
    ['2001:DB8::1', 'd3e879302a14a1b1bdd754d46f91a5ef5a1cd8228634b77ec13b55e527d53059'],
    ['::ffff:192.0.2.1', 'f209001e7b18601fc3689825d6aaa678d7da835ac0ee237d927d1e65d57301a3'],
    ['64:ff9b::192.0.2.1', 'd55834dc6e837748748ef5de48c1d7d2329018dcc31fc4ce59213f2b912a481f'],
    ['2002:c000:201::1', '1a79a612a33e929976f61ba519cedc1a77051deb06a49b891c16889503a2e798'],
    ['::192.0.2.1', 'b8de1e49957abab51ab7a701b9c4ecd38662e53358eca427f43e27be203cf3c2'],
    ['2001:db8::/32', 'e4953c69f05f9e91ef47dbe2224d5fdd90b58b10e82fea196f070a44642d9198'],
  ])('is the same as before for a row with ip %s', (ip, hash) => {
    expect(chainRowHash(GENESIS_HASH, { ...row, ip: canonicalIp(ip) }).toString('hex')).toBe(hash);
  });

  it.each(Object.keys(row) as (keyof ChainedContent)[])('changes when %s changes', (field) => {
    const changed: ChainedContent = { ...row };
    const value = row[field];
    if (typeof value === 'number') (changed[field] as number) = value + 1;
    else if (field === 'eventJson')
      changed.eventJson = canonicalJson({ id: 'e-1', data: { ip: '192.0.2.2' } });
    else if (field === 'ip') changed.ip = '192.0.2.2';
    else (changed[field] as string | null) = value === null ? 'x' : `${String(value)}x`;
    expect(chainRowHash(GENESIS_HASH, changed)).not.toEqual(base);
  });

  it('depends on the previous hash', () => {
    expect(chainRowHash(Buffer.alloc(32, 1), row)).not.toEqual(base);
  });
});
