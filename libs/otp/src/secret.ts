import { randomBytes } from 'node:crypto';
import { decodeBase32, encodeBase32 } from './base32.js';
import { OtpInputError } from './errors.js';

/** Bytes of a secret twofold generates: 160 bits, RFC 4226's recommended length. */
export const GENERATED_SECRET_BYTES = 20;

/**
 * Shortest key accepted on import. CONTRACT.md asks 160 bits of the secrets twofold
 * generates; a key a user brings from another authenticator may be shorter, and RFC 4226
 * §4 sets 128 bits as the minimum, so that is the floor for imports.
 */
export const MIN_IMPORTED_SECRET_BYTES = 16;

/** Longest key accepted on import: a SHA-512 block, otplib's own ceiling. */
export const MAX_IMPORTED_SECRET_BYTES = 64;

/**
 * Fewest distinct byte values an imported key may have. Random 128-bit keys have ~15;
 * fewer than 4 means a placeholder such as all zeros ('AAAA…'), which anyone can guess.
 */
const MIN_DISTINCT_KEY_BYTES = 4;

/** A fresh 160-bit secret from node's CSPRNG, as unpadded upper-case base32 (32 characters). */
export function generateSecret(): string {
  return encodeBase32(randomBytes(GENERATED_SECRET_BYTES));
}

/**
 * Reads a key a user copies from an existing authenticator: spaces, dashes, lower case and
 * `=` padding are accepted; the result is the canonical unpadded upper-case base32 of the
 * same bytes. Throws {@link OtpInputError} with a message fit for the user on any other
 * character, a truncated key, a key shorter than 128 bits, or a pattern such as all zeros.
 */
export function parseImportedSecret(input: string): string {
  // Checked before upper-casing: toUpperCase folds some non-ASCII letters into base32 ones
  // ('ſ' becomes 'S'), which would import a key the user never had.
  if (/[^\x20-\x7e\s]/.test(input)) {
    throw new OtpInputError(
      'base32 keys use only the letters A-Z and the digits 2-7: the key has other characters',
    );
  }
  const compact = input.replace(/[\s-]+/g, '').toUpperCase();
  const unpadded = compact.replace(/=+$/, '');
  if (unpadded.length === 0)
    throw new OtpInputError('the secret is empty: paste the base32 key of your authenticator');
  if (unpadded.includes('='))
    throw new OtpInputError('"=" may only appear as padding at the end of a base32 key');
  if (/[0189]/.test(unpadded)) {
    throw new OtpInputError(
      'base32 keys use only the letters A-Z and the digits 2-7 (no 0, 1, 8 or 9): check for O/0 or I/1 typos',
    );
  }
  const bytes = decodeBase32(unpadded);
  if (bytes.length < MIN_IMPORTED_SECRET_BYTES) {
    throw new OtpInputError(
      `the secret holds ${bytes.length * 8} bits; at least ${MIN_IMPORTED_SECRET_BYTES * 8} (${Math.ceil((MIN_IMPORTED_SECRET_BYTES * 8) / 5)} base32 characters) are required`,
    );
  }
  if (bytes.length > MAX_IMPORTED_SECRET_BYTES) {
    throw new OtpInputError(
      `the secret holds ${bytes.length * 8} bits; at most ${MAX_IMPORTED_SECRET_BYTES * 8} are supported`,
    );
  }
  if (new Set(bytes).size < MIN_DISTINCT_KEY_BYTES) {
    throw new OtpInputError(
      'the secret is a pattern (almost every byte the same), not a random key: enroll a new authenticator instead',
    );
  }
  return encodeBase32(bytes);
}
