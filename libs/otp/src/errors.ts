/**
 * Input a person or app supplied is wrong (a malformed secret, an unsupported algorithm):
 * retrying the same input cannot help, so callers answer 4xx with {@link OtpInputError.message}.
 */
export class OtpInputError extends Error {
  readonly code = 'TWOFOLD_OTP_INVALID_INPUT';
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'OtpInputError';
  }
}

/** The key ring handed to the secret encryption is unusable (bad key length, no active key). */
export class KeyRingError extends Error {
  readonly code = 'TWOFOLD_KEY_RING_INVALID';
  readonly retriable = false;
  constructor(message: string) {
    super(message);
    this.name = 'KeyRingError';
  }
}

/** Why a stored secret could not be decrypted. */
export type SecretDecryptionFailure = 'malformed' | 'unknown_key' | 'tampered';

/**
 * A stored TOTP secret cannot be decrypted: the ciphertext is not in a known format, it
 * names a key the ring does not hold, or authentication failed (tampered, or copied to
 * another user's row). Never retriable: the same bytes give the same answer.
 */
export class SecretDecryptionError extends Error {
  readonly code: `TWOFOLD_SECRET_${Uppercase<SecretDecryptionFailure>}`;
  readonly retriable = false;
  constructor(
    readonly failure: SecretDecryptionFailure,
    message: string,
  ) {
    super(message);
    this.name = 'SecretDecryptionError';
    this.code = `TWOFOLD_SECRET_${failure.toUpperCase() as Uppercase<SecretDecryptionFailure>}`;
  }
}
