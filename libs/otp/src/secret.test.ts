import { describe, expect, it } from 'vitest';
import { decodeBase32, encodeBase32 } from './base32.js';
import { OtpInputError } from './errors.js';
import { generateSecret, parseImportedSecret } from './secret.js';

describe('generateSecret', () => {
  it('makes 160 random bits as 32 unpadded base32 characters', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(decodeBase32(secret)).toHaveLength(20);
  });

  it('never repeats', () => {
    const secrets = new Set(Array.from({ length: 1000 }, () => generateSecret()));
    expect(secrets.size).toBe(1000);
  });
});

describe('parseImportedSecret', () => {
  const key = encodeBase32(Buffer.from('0123456789abcdefghij')); // 160 bits

  it.each([
    ['canonical', key],
    ['lower case', key.toLowerCase()],
    ['grouped by spaces', key.replace(/(.{4})/g, '$1 ').trim()],
    ['grouped by dashes', key.replace(/(.{4})(?!$)/g, '$1-')],
    ['with surrounding whitespace and a newline', `  ${key}\n`],
  ])('accepts the key %s', (_name, input) => {
    expect(parseImportedSecret(input)).toBe(key);
  });

  it('accepts and strips padding', () => {
    const sixteen = encodeBase32(Buffer.from('0123456789abcdef')); // 26 characters, padded to 32
    expect(parseImportedSecret(`${sixteen}======`)).toBe(sixteen);
  });

  it('accepts 128 bits, the RFC 4226 minimum, and canonicalizes leftover bits', () => {
    const bytes = Buffer.from('0123456789abcdef');
    bytes[15] = 0xff;
    const sixteen = encodeBase32(bytes); // ends in 4 = 111 + two leftover zero bits
    expect(sixteen).toMatch(/4$/);
    expect(parseImportedSecret(sixteen.replace(/4$/, '7'))).toBe(sixteen);
  });

  it.each([
    ['an empty key', '   ', /empty/],
    ['a key with 0, 1, 8 or 9', `${key.slice(0, 31)}0`, /no 0, 1, 8 or 9/],
    ['punctuation', `${key.slice(0, 31)}!`, /A-Z and the digits 2-7/],
    ['non-ASCII letters', `${key.slice(0, 31)}É`, /A-Z and the digits 2-7/],
    ['padding in the middle', `${key.slice(0, 8)}=${key.slice(8)}`, /padding at the end/],
    ['a key of 33 characters', `${key}A`, /truncated or has a typo/],
    [
      'the classic 80-bit demo key',
      'JBSWY3DPEHPK3PXP',
      /holds 80 bits; at least 128 \(26 base32 characters\)/,
    ],
    ['a key over 512 bits', encodeBase32(Buffer.from('0123456789'.repeat(7))), /at most 512/],
    ['a key of zeros', 'A'.repeat(32), /a pattern/],
    ['a key of one repeated byte', encodeBase32(Buffer.alloc(20, 0xab)), /a pattern/],
    ['a key of three byte values', encodeBase32(Buffer.from('abc'.repeat(7))), /a pattern/],
    // toUpperCase would turn the long s into S, importing a key the user never had.
    ['a letter that upper-cases into base32', `${key.slice(0, 31)}\u017f`, /other characters/],
  ])('refuses %s with a clear message', (_name, input, message) => {
    expect(() => parseImportedSecret(input)).toThrow(OtpInputError);
    expect(() => parseImportedSecret(input)).toThrow(message);
  });
});
