import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** How many backup codes a user receives at enrollment. */
export const BACKUP_CODE_COUNT = 10;

// Crockford's base32: no i, l, o or u, so what is printed is what gets typed; 32 symbols
// make 5 bits per character, 10 characters make 50 bits, and a 10-character code never
// looks like a 6- or 8-digit TOTP code.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_LENGTH = 10;
const GROUP_LENGTH = 5;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
// scrypt cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of milliseconds): codes are checked
// rarely, and a stolen table must cost an attacker that much per guess per code.
const SCRYPT: ScryptCost = { ln: 14, r: 8, p: 1 };
const MAX_LN = 20;
const MAX_R = 32;
const MAX_P = 16;

interface ScryptCost {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/**
 * Fresh backup codes for one user, shown once: `xxxxx-xxxxx`, 50 random bits each
 * (node's CSPRNG), lower-case Crockford base32.
 */
export function generateBackupCodes(count: number = BACKUP_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    // 32 symbols: the low five bits of a random byte pick one without bias.
    const chars = [...randomBytes(CODE_LENGTH)].map((byte) => ALPHABET[byte & 31]).join('');
    return `${chars.slice(0, GROUP_LENGTH)}-${chars.slice(GROUP_LENGTH)}`;
  });
}

/**
 * What a user typed, reduced to the stored form: case, spaces and dashes ignored, and
 * the letters Crockford reads as digits (o → 0, i and l → 1) mapped. Null when it cannot
 * be a backup code (wrong length or another character).
 */
export function normalizeBackupCode(input: string): string | null {
  const code = input
    .toLowerCase()
    .replace(/[\s-]+/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1');
  if (code.length !== CODE_LENGTH || ![...code].every((char) => ALPHABET.includes(char))) return null;
  return code;
}

/**
 * Hashes one backup code (as generated or typed; it is normalized first) with scrypt and
 * a random salt, into a self-describing PHC string `$scrypt$ln=14,r=8,p=1$<salt>$<hash>`.
 */
export async function hashBackupCode(code: string): Promise<string> {
  const normalized = normalizeBackupCode(code);
  if (normalized === null)
    throw new TypeError('not a backup code: expected 10 characters as generateBackupCodes makes them');
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(normalized, salt, HASH_BYTES, SCRYPT);
  return `$scrypt$ln=${SCRYPT.ln},r=${SCRYPT.r},p=${SCRYPT.p}$${unpadded(salt)}$${unpadded(hash)}`;
}

/** Hashes every code of {@link generateBackupCodes}, in order, for storage. */
export async function hashBackupCodes(codes: readonly string[]): Promise<string[]> {
  return Promise.all(codes.map((code) => hashBackupCode(code)));
}

/**
 * Index of the stored hash that `input` matches, or -1. Every hash is checked (not only
 * up to the match) and compared with `timingSafeEqual`, so the time taken says nothing
 * about which code matched. Input that cannot be a backup code returns -1 without hashing.
 * A code is usable once: the caller deletes the matched hash, atomically with accepting it.
 */
export async function findBackupCodeIndex(input: string, storedHashes: readonly string[]): Promise<number> {
  const normalized = normalizeBackupCode(input);
  if (normalized === null) return -1;
  const matches = await Promise.all(storedHashes.map((stored) => matchesHash(normalized, stored)));
  return matches.indexOf(true);
}

async function matchesHash(normalized: string, stored: string): Promise<boolean> {
  const parsed = PHC.exec(stored);
  if (!parsed) return false;
  const [ln, r, p] = parsed.slice(1, 4).map(Number);
  const salt = Buffer.from(parsed[4] ?? '', 'base64');
  const expected = Buffer.from(parsed[5] ?? '', 'base64');
  // A damaged row must not make us allocate gigabytes or compare against nothing.
  if (ln === undefined || r === undefined || p === undefined || ln > MAX_LN || r > MAX_R || p > MAX_P)
    return false;
  if (expected.length < HASH_BYTES) return false;
  const actual = await scryptAsync(normalized, salt, expected.length, { ln, r, p });
  return timingSafeEqual(actual, expected);
}

function scryptAsync(password: string, salt: Buffer, keylen: number, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.ln;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r };
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

function unpadded(bytes: Buffer): string {
  return bytes.toString('base64').replace(/=+$/, '');
}
