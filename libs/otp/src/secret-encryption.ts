import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { normalizeUsername } from '@twofold/contracts';
import { KeyRingError, SecretDecryptionError } from './errors.js';

/**
 * Master keys that encrypt TOTP secrets at rest: every key still needed to decrypt old
 * rows, and the one new rows are encrypted under. Build it with {@link createSecretKeyRing}.
 */
export interface SecretKeyRing {
  readonly keys: ReadonlyMap<string, Buffer>;
  readonly activeKeyId: string;
}

const FORMAT = 'v1';
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Checks a key ring once, at boot: ids as `TWOFOLD_MASTER_KEYS` spells them
 * (`[A-Za-z0-9_-]{1,32}`), 32-byte AES-256 keys, and an active id the ring holds.
 * Throws {@link KeyRingError}.
 */
export function createSecretKeyRing(keys: ReadonlyMap<string, Buffer>, activeKeyId: string): SecretKeyRing {
  for (const [id, key] of keys) {
    if (!KEY_ID.test(id)) throw new KeyRingError(`key id "${id}" must match ${KEY_ID.source}`);
    if (key.length !== KEY_BYTES)
      throw new KeyRingError(`key ${id} must be ${KEY_BYTES} bytes, not ${key.length}`);
  }
  if (!keys.has(activeKeyId))
    throw new KeyRingError(`the active key "${activeKeyId}" is not in the key ring`);
  return Object.freeze({ keys: new Map(keys), activeKeyId });
}

/**
 * Encrypts a TOTP secret for one user with AES-256-GCM under the active key. Returns
 * `v1.<keyId>.<iv>.<ciphertext+tag>` (base64url parts). The normalized username is
 * associated data, so the string only decrypts for the same user.
 */
export function encryptSecret(ring: SecretKeyRing, username: string, secret: string): string {
  const keyId = ring.activeKeyId;
  const key = keyOf(ring, keyId);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(keyId, username));
  const sealed = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return [FORMAT, keyId, iv.toString('base64url'), sealed.toString('base64url')].join('.');
}

/**
 * Decrypts what {@link encryptSecret} produced, under whichever ring key it names.
 * Throws {@link SecretDecryptionError}: `malformed`, `unknown_key`, or `tampered` (which
 * includes a ciphertext copied to another user's row).
 */
export function decryptSecret(ring: SecretKeyRing, username: string, ciphertext: string): string {
  const { keyId, iv, sealed } = parseCiphertext(ciphertext);
  const key = ring.keys.get(keyId);
  if (!key) {
    throw new SecretDecryptionError(
      'unknown_key',
      `the secret is encrypted under key "${keyId}", which the key ring does not hold`,
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(associatedData(keyId, username));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    throw new SecretDecryptionError(
      'tampered',
      'the secret failed authentication: it was altered or belongs to another user',
    );
  }
}

/** The key id a ciphertext names. Throws {@link SecretDecryptionError} (`malformed`). */
export function keyIdOf(ciphertext: string): string {
  return parseCiphertext(ciphertext).keyId;
}

/** True when the ciphertext is already under the ring's active key (rotation can skip it). */
export function isUnderActiveKey(ring: SecretKeyRing, ciphertext: string): boolean {
  return keyIdOf(ciphertext) === ring.activeKeyId;
}

/**
 * Re-encrypts one stored secret under the active key, for the rotation command. A
 * ciphertext already under the active key is still decrypted (so corruption surfaces) but
 * returned unchanged with `changed: false`, sparing the row write.
 */
export function reencryptSecret(
  ring: SecretKeyRing,
  username: string,
  ciphertext: string,
): { readonly ciphertext: string; readonly changed: boolean } {
  const secret = decryptSecret(ring, username, ciphertext);
  if (isUnderActiveKey(ring, ciphertext)) return { ciphertext, changed: false };
  return { ciphertext: encryptSecret(ring, username, secret), changed: true };
}

// The key id is bound too, though a swapped id already fails: it names a different key.
function associatedData(keyId: string, username: string): Buffer {
  return Buffer.from(`twofold-totp-secret.${FORMAT}.${keyId}.${normalizeUsername(username)}`, 'utf8');
}

function keyOf(ring: SecretKeyRing, keyId: string): Buffer {
  const key = ring.keys.get(keyId);
  if (!key) throw new KeyRingError(`the active key "${keyId}" is not in the key ring`);
  return key;
}

function parseCiphertext(ciphertext: string): { keyId: string; iv: Buffer; sealed: Buffer } {
  const parts = ciphertext.split('.');
  const [format, keyId, iv, sealed] = parts;
  if (
    parts.length !== 4 ||
    format !== FORMAT ||
    keyId === undefined ||
    !KEY_ID.test(keyId) ||
    iv === undefined ||
    !BASE64URL.test(iv) ||
    sealed === undefined ||
    !BASE64URL.test(sealed)
  ) {
    throw new SecretDecryptionError(
      'malformed',
      `a stored secret must look like ${FORMAT}.<keyId>.<iv>.<ciphertext>`,
    );
  }
  const ivBytes = Buffer.from(iv, 'base64url');
  const sealedBytes = Buffer.from(sealed, 'base64url');
  if (ivBytes.length !== IV_BYTES || sealedBytes.length <= TAG_BYTES) {
    throw new SecretDecryptionError('malformed', 'a stored secret has a truncated iv or ciphertext');
  }
  return { keyId, iv: ivBytes, sealed: sealedBytes };
}
