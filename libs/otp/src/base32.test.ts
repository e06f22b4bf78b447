import { describe, expect, it } from 'vitest';
import { decodeBase32, encodeBase32 } from './base32.js';
import { OtpInputError } from './errors.js';

// RFC 4648 §10, without the padding the Key URI leaves out.
const vectors: [string, string][] = [
  ['', ''],
  ['f', 'MY'],
  ['fo', 'MZXQ'],
  ['foo', 'MZXW6'],
  ['foob', 'MZXW6YQ'],
  ['fooba', 'MZXW6YTB'],
  ['foobar', 'MZXW6YTBOI'],
];

describe('base32', () => {
  it.each(vectors)('encodes and decodes %j as %s', (plain, encoded) => {
    expect(encodeBase32(Buffer.from(plain))).toBe(encoded);
    expect(Buffer.from(decodeBase32(encoded)).toString()).toBe(plain);
  });

  it('ignores leftover bits after the last byte, as authenticators do', () => {
    expect(Buffer.from(decodeBase32('MZ')).toString()).toBe('f');
  });

  it.each(['M', 'MZX', 'MZXW6Y'])('refuses %s, a length no encoder produces', (text) => {
    expect(() => decodeBase32(text)).toThrow(OtpInputError);
  });

  it.each(['MZXW6YT1', 'mzxw6ytb', 'MZXW6YT='])('refuses %s, outside the canonical alphabet', (text) => {
    expect(() => decodeBase32(text)).toThrow(/A-Z and the digits 2-7/);
  });
});
