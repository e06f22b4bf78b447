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
  ])('%s is not an inet Postgres takes', (input) => {
    expect(canonicalIp(input)).toBeNull();
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
