import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRingError, SecretDecryptionError } from './errors.js';
import { generateSecret } from './secret.js';
import {
  createSecretKeyRing,
  decryptSecret,
  encryptSecret,
  isUnderActiveKey,
  keyIdOf,
  reencryptSecret,
} from './secret-encryption.js';

const oldKey = randomBytes(32);
const newKey = randomBytes(32);
const before = createSecretKeyRing(new Map([['k2025', oldKey]]), 'k2025');
const after = createSecretKeyRing(
  new Map([
    ['k2025', oldKey],
    ['k2026', newKey],
  ]),
  'k2026',
);

function failure(run: () => unknown): SecretDecryptionError {
  try {
    run();
  } catch (err) {
    if (err instanceof SecretDecryptionError) return err;
    throw err;
  }
  throw new Error('expected a SecretDecryptionError');
}

describe('secret encryption', () => {
  const secret = generateSecret();

  it('round-trips under the active key in the v1.<keyId>.<iv>.<ct> form', () => {
    const sealed = encryptSecret(before, 'alice', secret);
    expect(sealed).toMatch(/^v1\.k2025\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain(secret);
    expect(decryptSecret(before, 'alice', sealed)).toBe(secret);
  });

  it('uses a fresh iv each time', () => {
    expect(encryptSecret(before, 'alice', secret)).not.toBe(encryptSecret(before, 'alice', secret));
  });

  it('binds the normalized username: the same user decrypts whatever the spelling', () => {
    const sealed = encryptSecret(before, ' Alice', secret);
    expect(decryptSecret(before, 'ALICE', sealed)).toBe(secret);
  });

  it('refuses a secret copied to another user’s row', () => {
    const sealed = encryptSecret(before, 'alice', secret);
    const err = failure(() => decryptSecret(before, 'mallory', sealed));
    expect(err.failure).toBe('tampered');
    expect(err.code).toBe('TWOFOLD_SECRET_TAMPERED');
    expect(err.retriable).toBe(false);
  });

  it('refuses a tampered ciphertext, iv or key id', () => {
    const sealed = encryptSecret(after, 'alice', secret);
    const [format, keyId, iv, body] = sealed.split('.') as [string, string, string, string];
    const flip = (part: string) => {
      const bytes = Buffer.from(part, 'base64url');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      return bytes.toString('base64url');
    };
    expect(
      failure(() => decryptSecret(after, 'alice', [format, keyId, iv, flip(body)].join('.'))).failure,
    ).toBe('tampered');
    expect(
      failure(() => decryptSecret(after, 'alice', [format, keyId, flip(iv), body].join('.'))).failure,
    ).toBe('tampered');
    expect(failure(() => decryptSecret(after, 'alice', [format, 'k2025', iv, body].join('.'))).failure).toBe(
      'tampered',
    );
  });

  it('names an unknown key id', () => {
    const sealed = encryptSecret(after, 'alice', secret);
    const err = failure(() => decryptSecret(before, 'alice', sealed));
    expect(err.failure).toBe('unknown_key');
    expect(err.message).toContain('k2026');
  });

  it.each([
    ['empty', ''],
    ['another version', 'v2.k2025.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAA'],
    ['too few parts', 'v1.k2025.AAAAAAAAAAAAAAAA'],
    ['a short iv', 'v1.k2025.AAAA.AAAAAAAAAAAAAAAAAAAAAAAA'],
    ['no room for a tag', 'v1.k2025.AAAAAAAAAAAAAAAA.AAAA'],
    ['standard base64', 'v1.k2025.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA+/'],
    ['a plaintext secret', secret],
  ])('calls %s malformed', (_name, text) => {
    expect(failure(() => decryptSecret(before, 'alice', text)).failure).toBe('malformed');
  });
});

describe('key rotation', () => {
  const secret = generateSecret();

  it('tells whether a ciphertext is under the active key', () => {
    const sealed = encryptSecret(before, 'alice', secret);
    expect(keyIdOf(sealed)).toBe('k2025');
    expect(isUnderActiveKey(before, sealed)).toBe(true);
    expect(isUnderActiveKey(after, sealed)).toBe(false);
  });

  it('re-encrypts an old row under the active key, for the same user only', () => {
    const sealed = encryptSecret(before, 'alice', secret);
    const rotated = reencryptSecret(after, 'alice', sealed);
    expect(rotated.changed).toBe(true);
    expect(keyIdOf(rotated.ciphertext)).toBe('k2026');
    expect(decryptSecret(after, 'alice', rotated.ciphertext)).toBe(secret);
    expect(failure(() => decryptSecret(after, 'bob', rotated.ciphertext)).failure).toBe('tampered');
    // The retired key alone can no longer read it.
    expect(failure(() => decryptSecret(before, 'alice', rotated.ciphertext)).failure).toBe('unknown_key');
  });

  it('leaves a row already under the active key unchanged, after checking it decrypts', () => {
    const sealed = encryptSecret(after, 'alice', secret);
    expect(reencryptSecret(after, 'alice', sealed)).toEqual({ ciphertext: sealed, changed: false });
    expect(failure(() => reencryptSecret(after, 'bob', sealed)).failure).toBe('tampered');
  });
});

describe('createSecretKeyRing', () => {
  it.each([
    ['a missing active key', new Map([['a', oldKey]]), 'b', /active key "b" is not in the key ring/],
    ['a 16-byte key', new Map([['a', randomBytes(16)]]), 'a', /must be 32 bytes, not 16/],
    ['an id with a dot', new Map([['a.b', oldKey]]), 'a.b', /key id "a.b"/],
  ])('refuses %s', (_name, keys, active, message) => {
    expect(() => createSecretKeyRing(keys, active)).toThrow(KeyRingError);
    expect(() => createSecretKeyRing(keys, active)).toThrow(message);
  });

  it('keeps its own copy of the map', () => {
    const keys = new Map([['a', oldKey]]);
    const ring = createSecretKeyRing(keys, 'a');
    keys.delete('a');
    expect(ring.keys.has('a')).toBe(true);
  });
});
