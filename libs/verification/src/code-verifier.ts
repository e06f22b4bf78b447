import { createEvent } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import {
  SecretDecryptionError,
  decodeBase32,
  decryptSecret,
  findBackupCodeIndex,
  normalizeBackupCode,
  verifyTotpKey,
  type SecretKeyRing,
  type TotpParameters,
} from '@twofold/otp';
import type { Lock, Unknown } from '@twofold/policy';
import type { Redis } from '@twofold/redis';
import {
  acceptTimeStepOfVersion,
  enrollmentVersion,
  type Challenge,
  type ChallengeStore,
} from '@twofold/state';
import type { Enrollment, EnrollmentsRepository } from '@twofold/store';
import { createEnrollmentCache } from './enrollment-cache.js';
import { VerificationError, orUnavailable } from './errors.js';

export type SubmittedCode = { kind: 'totp'; digits: string } | { kind: 'backup_code'; code: string };

/**
 * Tells a TOTP code from a backup code by its shape, or throws `malformed` with a message
 * that says what is expected. Malformed input costs no attempt.
 */
export function classifyCode(raw: unknown): SubmittedCode {
  if (typeof raw !== 'string') throw new VerificationError('malformed', 'code must be a string');
  const compact = raw.replace(/[\s]/g, '');
  // A backup code may be all digits (about one in 100,000 users has one): ten digits are
  // a backup code, typed with or without its dash.
  if (/^\d+$/.test(compact) && compact.length !== 10) {
    if (compact.length !== 6 && compact.length !== 8) {
      throw new VerificationError(
        'malformed',
        `code must be 6 or 8 digits (or a 10-character backup code); got ${compact.length}`,
      );
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

/** A code was submitted for a challenge that another app's login created (nothing counted). */
export class ForeignChallengeError extends Error {
  constructor(readonly ownerAppId: string) {
    super(`this challenge belongs to app ${ownerAppId}`);
    this.name = 'ForeignChallengeError';
  }
}

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
  /** The enrollments kept in memory (see {@link createEnrollmentCache}); 0 turns the cache off. */
  cacheEntries?: number;
  /** Longest a kept enrollment is used without reading it again (ms; default an hour). */
  cacheMaxAgeMs?: number;
}

/** A user's authenticator as the code verifier keeps it: the key bytes, read under a version token. */
interface KeptEnrollment {
  readonly version: string;
  readonly key: Uint8Array;
  readonly params: TotpParameters;
  readonly readAt: number;
}

const unavailable = (what: string) =>
  new VerificationError('unavailable', `${what} is unavailable; try again`);

/**
 * Verifies a code typed for a challenge: TOTP (with the cross-app, cross-replica replay
 * guard) or a backup code (each usable once). Publishes `2fa.verified` or `2fa.failed`
 * with the reason, so the lockout detector and the session broadcaster hear it.
 *
 * A TOTP code costs, in Redis: the attempt (one script, which also refuses another app's
 * challenge), the lock read, and the replay guard with the enrollment version check (one
 * script); the challenge's removal goes out with the event. The user's enrollment comes
 * from memory when kept under the current version, else from Postgres (after reading the
 * version token). Redis failing fails closed: 503, never a code accepted.
 */
export function createCodeVerifier(deps: CodeVerifierDeps) {
  const source = deps.source ?? 'service/api';
  const cache = createEnrollmentCache<KeptEnrollment>({
    maxEntries: deps.cacheEntries ?? 100_000,
    maxAgeMs: deps.cacheMaxAgeMs ?? 60 * 60_000,
  });
  const windowOption = deps.window !== undefined ? { window: deps.window } : {};

  /**
   * Reads the user's enrollment under a version token: `known`, one read before this call
   * (the challenge's), or a fresh one. Undefined when not enrolled.
   */
  async function load(username: string, known?: string): Promise<KeptEnrollment | undefined> {
    let version = known;
    if (version === undefined) {
      try {
        version = await enrollmentVersion(deps.redis, deps.keyPrefix, username);
      } catch {
        throw unavailable('the enrollment state');
      }
    }
    const enrollment = await orUnavailable(
      deps.enrollments.get(username),
      'the stored authenticator is unavailable; try again',
    );
    if (!enrollment) return undefined;
    const entry: KeptEnrollment = {
      version,
      key: decodeBase32(decrypt(username, enrollment)),
      params: { algorithm: enrollment.algorithm, digits: enrollment.digits, period: enrollment.period },
      readAt: Date.now(),
    };
    cache.set(username, entry);
    return entry;
  }

  function decrypt(username: string, enrollment: Enrollment): string {
    try {
      return decryptSecret(deps.keyRing, username, enrollment.secretCiphertext);
    } catch (err) {
      if (!(err instanceof SecretDecryptionError)) throw err;
      // Tampered, copied from another user, or under a retired key: never accept a code.
      throw new VerificationError(
        'conflict',
        `the stored authenticator of ${username} cannot be decrypted (${err.failure}); an admin must reset it`,
      );
    }
  }

  async function lockOf(challenge: Challenge): Promise<'locked' | null> {
    const lock = await deps.readLock(challenge.username, challenge.ip);
    if (lock === 'unknown') throw unavailable('lockout state');
    return lock !== null ? 'locked' : null;
  }

  async function checkBackupCode(challenge: Challenge, code: string): Promise<Outcome> {
    const postgres = <T>(read: Promise<T>) =>
      orUnavailable(read, 'the backup codes are unavailable; try again');
    const [locked, enrollment] = await Promise.all([
      lockOf(challenge),
      postgres(deps.enrollments.get(challenge.username)),
    ]);
    if (locked) return locked;
    if (!enrollment) return 'bad_code'; // reset since the challenge was made
    const hashes = await postgres(deps.enrollments.unusedBackupCodeHashes(challenge.username));
    const index = await findBackupCodeIndex(code, hashes);
    if (index < 0) return 'bad_code';
    return (await postgres(deps.enrollments.consumeBackupCode(challenge.username, hashes[index]!)))
      ? 'ok'
      : 'replayed';
  }

  /**
   * The enrollment the verifier sealed into the challenge, under the version read before
   * it; undefined when there is none or it no longer decrypts (a key retired since: the
   * row is read again).
   */
  function fromChallenge(challenge: Challenge): KeptEnrollment | undefined {
    const sealed = challenge.sealedEnrollment;
    if (!sealed || challenge.enrollmentVersion === undefined) return undefined;
    let secret: string;
    try {
      secret = decryptSecret(deps.keyRing, challenge.username, sealed.ciphertext);
    } catch {
      return undefined;
    }
    const entry: KeptEnrollment = {
      version: challenge.enrollmentVersion,
      key: decodeBase32(secret),
      params: { algorithm: sealed.algorithm, digits: sealed.digits, period: sealed.period },
      readAt: Date.now(),
    };
    cache.set(challenge.username, entry);
    return entry;
  }

  async function checkTotp(challenge: Challenge, digits: string): Promise<Outcome> {
    const { username } = challenge;
    // A copy (kept in memory, or sealed into the challenge) is used as it is: its version
    // is checked by the replay guard's script, and again when a code does not match it
    // (the user may have enrolled anew). Without one, the row is read under the version.
    const copy = cache.get(username, Date.now()) ?? fromChallenge(challenge);
    const [locked, first] = await Promise.all([
      lockOf(challenge),
      copy ?? load(username, challenge.enrollmentVersion),
    ]);
    if (locked) return locked;
    let entry = first;
    for (let round = 0; ; round++) {
      if (!entry) return 'bad_code'; // not enrolled (reset since the challenge was made)
      const fromCopy = round === 0 && copy !== undefined;
      const result =
        digits.length === entry.params.digits
          ? verifyTotpKey(entry.key, digits, { ...entry.params, ...windowOption })
          : ({ valid: false } as const);
      let verdict: 'accepted' | 'replayed' | 'stale' | 'bad_code';
      try {
        if (result.valid) {
          verdict = await acceptTimeStepOfVersion(
            deps.redis,
            deps.keyPrefix,
            username,
            result.timeStep,
            entry.version,
            { period: entry.params.period, ...windowOption },
          );
        } else if (fromCopy) {
          const current = await enrollmentVersion(deps.redis, deps.keyPrefix, username);
          verdict = current === entry.version ? 'bad_code' : 'stale';
        } else {
          verdict = 'bad_code';
        }
      } catch (err) {
        if (err instanceof VerificationError) throw err;
        throw unavailable('the replay guard');
      }
      if (verdict === 'accepted') return 'ok';
      if (verdict !== 'stale') return verdict;
      cache.delete(username);
      // Changed twice while one code was checked: an admin is resetting it right now.
      if (round >= 2) throw unavailable('the enrollment (it is being changed)');
      entry = await load(username);
    }
  }

  return {
    /** Enrollments kept in memory (for tests and metrics). */
    cache,
    /**
     * Verifies `rawCode` for the challenge. With `appId` (the api's route), a challenge of
     * another app throws {@link ForeignChallengeError} and counts no attempt.
     */
    async verify(
      challengeId: string,
      rawCode: unknown,
      options: { appId?: string } = {},
    ): Promise<VerifyResult> {
      const code = classifyCode(rawCode);
      let attempt: Awaited<ReturnType<ChallengeStore['takeAttempt']>>;
      try {
        attempt = await deps.challenges.takeAttempt(challengeId, options);
      } catch {
        throw unavailable('the challenge state');
      }
      if (attempt.kind === 'missing') {
        throw new VerificationError(
          'not_found',
          'unknown or expired challenge; sign in again to get a new one',
        );
      }
      if (attempt.kind === 'forbidden') throw new ForeignChallengeError(attempt.ownerAppId);
      const { challenge } = attempt;
      const outcome =
        attempt.kind === 'exhausted'
          ? 'expired'
          : code.kind === 'totp'
            ? await checkTotp(challenge, code.digits)
            : await checkBackupCode(challenge, code.code);
      const base = { appId: challenge.appId, session: challenge.session, challengeId };
      if (outcome === 'ok') {
        const method = code.kind;
        // Announced before the challenge goes: the session counts as verified only once the
        // broadcaster hears it. Unannounced, the user answers again with the next code (this
        // one is spent) on the same challenge, instead of finding it gone.
        await orUnavailable(
          deps.producer.publish('secondFactor', [
            createEvent('twofold.2fa.verified', source, challenge.username, { ...base, method }),
          ]),
          'the verification could not be recorded; try again with the next code',
        );
        // A challenge left behind expires; its code is spent (replay guard) either way.
        await deps.challenges.complete(challengeId).catch(() => false);
        return { verified: true, method, challenge };
      }
      // The lockout detector counts this failure from the event.
      await orUnavailable(
        deps.producer.publish('secondFactor', [
          createEvent('twofold.2fa.failed', source, challenge.username, {
            ...base,
            ip: challenge.ip,
            reason: outcome,
          }),
        ]),
        'the attempt could not be recorded; try again',
      );
      return {
        verified: false,
        reason: outcome,
        challenge,
        attemptsLeft: Math.max(0, deps.maxAttempts - challenge.attempts),
      };
    },
  };
}
type Outcome = 'ok' | 'bad_code' | 'replayed' | 'locked';
export type CodeVerifier = ReturnType<typeof createCodeVerifier>;
