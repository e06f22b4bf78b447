import { createEvent } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import {
  SecretDecryptionError,
  decryptSecret,
  findBackupCodeIndex,
  normalizeBackupCode,
  verifyTotp,
  type SecretKeyRing,
} from '@twofold/otp';
import type { Lock, Unknown } from '@twofold/policy';
import type { Redis } from '@twofold/redis';
import { acceptTimeStep, type Challenge, type ChallengeStore } from '@twofold/state';
import type { EnrollmentsRepository } from '@twofold/store';
import { VerificationError } from './errors.js';

export type SubmittedCode = { kind: 'totp'; digits: string } | { kind: 'backup_code'; code: string };

/**
 * Tells a TOTP code from a backup code by its shape, or throws `malformed` with a message
 * that says what is expected. Malformed input costs no attempt.
 */
export function classifyCode(raw: unknown): SubmittedCode {
  if (typeof raw !== 'string') throw new VerificationError('malformed', 'code must be a string');
  const compact = raw.replace(/[\s]/g, '');
  if (/^\d+$/.test(compact)) {
    if (compact.length !== 6 && compact.length !== 8) {
      throw new VerificationError('malformed', `code must be 6 or 8 digits; got ${compact.length}`);
    }
    return { kind: 'totp', digits: compact };
  }
  const backup = normalizeBackupCode(raw);
  if (backup) return { kind: 'backup_code', code: backup };
  throw new VerificationError(
    'malformed',
    'code must be the 6- or 8-digit code of the authenticator app, or a backup code (xxxxx-xxxxx)',
  );
}

export type VerifyResult =
  | { verified: true; method: 'totp' | 'backup_code'; challenge: Challenge }
  | {
      verified: false;
      reason: 'bad_code' | 'replayed' | 'expired' | 'locked';
      challenge: Challenge;
      attemptsLeft: number;
    };

export interface CodeVerifierDeps {
  challenges: ChallengeStore;
  enrollments: EnrollmentsRepository;
  keyRing: SecretKeyRing;
  redis: Redis;
  keyPrefix: string;
  producer: EventProducer;
  /** The user's (and user+IP) lock; 'unknown' when it cannot be read. */
  readLock: (username: string, ip: string) => Promise<Lock | null | Unknown>;
  window?: number;
  maxAttempts: number;
  source?: string;
}

/**
 * Verifies a code typed for a challenge: TOTP (with the cross-app, cross-replica replay
 * guard) or a backup code (each usable once). Publishes `2fa.verified` or `2fa.failed`
 * with the reason, so the lockout detector and the session broadcaster hear it.
 */
export function createCodeVerifier(deps: CodeVerifierDeps) {
  const source = deps.source ?? 'service/api';

  async function check(
    challenge: Challenge,
    code: SubmittedCode,
  ): Promise<'ok' | 'bad_code' | 'replayed' | 'locked'> {
    const lock = await deps.readLock(challenge.username, challenge.ip);
    if (lock === 'unknown')
      throw new VerificationError('unavailable', 'lockout state is unavailable; try again');
    if (lock !== null) return 'locked';
    const enrollment = await deps.enrollments.get(challenge.username);
    if (!enrollment) return 'bad_code'; // reset since the challenge was made
    if (code.kind === 'backup_code') {
      const hashes = await deps.enrollments.unusedBackupCodeHashes(challenge.username);
      const index = await findBackupCodeIndex(code.code, hashes);
      if (index < 0) return 'bad_code';
      return (await deps.enrollments.consumeBackupCode(challenge.username, hashes[index]!))
        ? 'ok'
        : 'replayed';
    }
    if (code.digits.length !== enrollment.digits) return 'bad_code';
    let secret: string;
    try {
      secret = decryptSecret(deps.keyRing, challenge.username, enrollment.secretCiphertext);
    } catch (err) {
      if (!(err instanceof SecretDecryptionError)) throw err;
      // Tampered, copied from another user, or under a retired key: never accept a code.
      throw new VerificationError(
        'conflict',
        `the stored authenticator of ${challenge.username} cannot be decrypted (${err.failure}); an admin must reset it`,
      );
    }
    const result = await verifyTotp(secret, code.digits, {
      algorithm: enrollment.algorithm,
      digits: enrollment.digits,
      period: enrollment.period,
      ...(deps.window !== undefined ? { window: deps.window } : {}),
    });
    if (!result.valid) return 'bad_code';
    const fresh = await acceptTimeStep(deps.redis, deps.keyPrefix, challenge.username, result.timeStep, {
      period: enrollment.period,
      ...(deps.window !== undefined ? { window: deps.window } : {}),
    });
    return fresh ? 'ok' : 'replayed';
  }

  return {
    async verify(challengeId: string, rawCode: unknown): Promise<VerifyResult> {
      const code = classifyCode(rawCode);
      const attempt = await deps.challenges.takeAttempt(challengeId);
      if (attempt.kind === 'missing') {
        throw new VerificationError(
          'not_found',
          'unknown or expired challenge; sign in again to get a new one',
        );
      }
      const { challenge } = attempt;
      const outcome = attempt.kind === 'exhausted' ? 'expired' : await check(challenge, code);
      const base = { appId: challenge.appId, session: challenge.session, challengeId };
      if (outcome === 'ok') {
        await deps.challenges.complete(challengeId);
        const method = code.kind;
        await deps.producer.publish('secondFactor', [
          createEvent('twofold.2fa.verified', source, challenge.username, { ...base, method }),
        ]);
        return { verified: true, method, challenge };
      }
      await deps.producer.publish('secondFactor', [
        createEvent('twofold.2fa.failed', source, challenge.username, {
          ...base,
          ip: challenge.ip,
          reason: outcome,
        }),
      ]);
      return {
        verified: false,
        reason: outcome,
        challenge,
        attemptsLeft: Math.max(0, deps.maxAttempts - challenge.attempts),
      };
    },
  };
}
export type CodeVerifier = ReturnType<typeof createCodeVerifier>;
