import { OtpInputError } from './errors.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const VALUES: ReadonlyMap<string, number> = new Map([...ALPHABET].map((char, value) => [char, value]));

/** RFC 4648 base32 of `bytes`, upper case, without `=` padding (the Key URI form). */
export function encodeBase32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(buffer >>> bits) & 31];
    }
  }
  if (bits > 0) out += ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

/**
 * Decodes canonical, unpadded, upper-case RFC 4648 base32. Leftover bits after the last
 * whole byte are ignored, as authenticator apps do. Throws {@link OtpInputError} on any
 * character outside the alphabet or a length no encoder can produce (1, 3 or 6 mod 8).
 */
export function decodeBase32(text: string): Uint8Array {
  if ([1, 3, 6].includes(text.length % 8)) {
    throw new OtpInputError(`a base32 key of ${text.length} characters is truncated or has a typo`);
  }
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let buffer = 0;
  let bits = 0;
  let index = 0;
  for (const char of text) {
    const value = VALUES.get(char);
    if (value === undefined)
      throw new OtpInputError('base32 keys use only the letters A-Z and the digits 2-7');
    buffer = ((buffer << 5) | value) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[index++] = (buffer >>> bits) & 0xff;
    }
  }
  return out;
}
