import { randomUUID } from 'node:crypto';
import { createEvent, normalizeUsername } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import {
  OtpInputError,
  buildKeyUri,
  decryptSecret,
  encryptSecret,
  generateBackupCodes,
  generateSecret,
  hashBackupCodes,
  parseImportedSecret,
  parseTotpParameters,
  renderQrSvg,
  verifyTotp,
  type SecretKeyRing,
  type TotpParameters,
} from '@twofold/otp';
import { taggedKey, type Redis } from '@twofold/redis';
import { acceptTimeStep, bumpEnrollmentVersion } from '@twofold/state';
import { AlreadyEnrolledError, type EnrollmentsRepository } from '@twofold/store';
import { VerificationError, orUnavailable } from './errors.js';

export const PENDING_ENROLLMENT_TTL_SECONDS = 15 * 60;
export const MAX_CONFIRM_ATTEMPTS = 5;

export interface StartedEnrollment {
  enrollmentId: string;
  username: string;
  otpauthUri: string;
  qrSvg: string;
  /** The base32 secret, for typing it in by hand on the enrollment page. */
  secret: string;
  expiresAt: string;
  /** The app that started it (its registered origins bound the hosted page's returnTo). */
  appId: string | null;
}

function totpParameters(input: { algorithm?: unknown; digits?: unknown; period?: unknown }): TotpParameters {
  try {
    return parseTotpParameters(input as Parameters<typeof parseTotpParameters>[0]);
  } catch (err) {
    throw new VerificationError('malformed', (err as Error).message);
  }
}

/**
 * Enrollment: one TOTP secret per user, shared by every app. Start (a generated secret
 * and its QR code), confirm with a code (activates it and returns backup codes, once),
 * import an existing authenticator key proven by a current code, and the admin reset.
 */
export function createEnrollmentService(deps: {
  enrollments: EnrollmentsRepository;
  keyRing: SecretKeyRing;
  redis: Redis;
  keyPrefix: string;
  producer: EventProducer;
  issuer?: string;
  source?: string;
}) {
  const source = deps.source ?? 'service/api';
  const issuer = deps.issuer ?? 'twofold';

  /**
   * Makes every code verifier's kept copy of the user's enrollment stale (see the code
   * verifier's cache). Throws `unavailable` when Redis cannot record it.
   */
  async function invalidateKeptCopies(username: string, what: string): Promise<void> {
    await orUnavailable(
      bumpEnrollmentVersion(deps.redis, deps.keyPrefix, username),
      `the enrollment state is unavailable; ${what}`,
    );
  }

  async function ensureNotEnrolled(username: string) {
    if (await deps.enrollments.get(username)) {
      throw new VerificationError(
        'conflict',
        `${username} already has an authenticator; an admin must reset it first`,
      );
    }
  }

  async function activate(
    username: string,
    secret: string,
    params: TotpParameters,
    origin: 'generated' | 'imported',
    code: string,
    pendingId?: string,
  ): Promise<string[]> {
    if (!/^\d+$/.test(code) || code.length !== params.digits) {
      throw new VerificationError(
        'malformed',
        `code must be the current ${params.digits}-digit code of the authenticator`,
      );
    }
    const result = await verifyTotp(secret, code, params);
    if (!result.valid) return [];
    // The confirming code is spent: it cannot answer a challenge afterwards.
    await acceptTimeStep(deps.redis, deps.keyPrefix, username, result.timeStep, { period: params.period });
    // A new version token before the row is stored: a login verifier keeps "not enrolled"
    // under the token it read, and must not go on answering it (a voluntary user skipped)
    // should the change after the commit not reach Redis.
    await invalidateKeptCopies(username, 'nothing was enrolled; try again with the next code');
    const backupCodes = generateBackupCodes();
    try {
      await deps.enrollments.activate({
        username,
        secretCiphertext: encryptSecret(deps.keyRing, username, secret),
        ...params,
        origin,
        backupCodeHashes: await hashBackupCodes(backupCodes),
        ...(pendingId ? { pendingId } : {}),
      });
    } catch (err) {
      if (err instanceof AlreadyEnrolledError) throw new VerificationError('conflict', err.message);
      throw err;
    }
    // Again after the commit, for a copy read between the change above and the commit: best
    // effort, since failing here would lose the backup codes of an enrollment that is active.
    await bumpEnrollmentVersion(deps.redis, deps.keyPrefix, username).catch(() => undefined);
    await deps.producer.publish('secondFactor', [
      createEvent('twofold.enrollment.activated', source, username, { method: origin }),
    ]);
    return backupCodes;
  }

  return {
    async start(input: {
      username: string;
      appId: string | null;
      algorithm?: unknown;
      digits?: unknown;
    }): Promise<StartedEnrollment> {
      const username = normalizeUsername(input.username);
      if (!username) throw new VerificationError('malformed', 'username is empty');
      const params = totpParameters({ algorithm: input.algorithm, digits: input.digits });
      await ensureNotEnrolled(username);
      const secret = generateSecret();
      const enrollmentId = randomUUID();
      const expiresAt = await deps.enrollments.createPending({
        enrollmentId,
        username,
        secretCiphertext: encryptSecret(deps.keyRing, username, secret),
        ...params,
        appId: input.appId,
        ttlSeconds: PENDING_ENROLLMENT_TTL_SECONDS,
      });
      const otpauthUri = buildKeyUri({ secret, accountName: username, issuer, ...params });
      return {
        enrollmentId,
        username,
        otpauthUri,
        qrSvg: await renderQrSvg(otpauthUri),
        secret,
        expiresAt: expiresAt.toISOString(),
        appId: input.appId,
      };
    },

    /** The pending enrollment's page data (QR, manual key) for the hosted page. */
    async describe(enrollmentId: string): Promise<StartedEnrollment> {
      const pending = await deps.enrollments.getPending(enrollmentId);
      if (!pending)
        throw new VerificationError('not_found', 'unknown or expired enrollment; start a new one');
      const secret = decryptSecret(deps.keyRing, pending.username, pending.secretCiphertext);
      const otpauthUri = buildKeyUri({ secret, accountName: pending.username, issuer, ...pending });
      return {
        enrollmentId,
        username: pending.username,
        otpauthUri,
        qrSvg: await renderQrSvg(otpauthUri),
        secret,
        expiresAt: pending.expiresAt.toISOString(),
        appId: pending.appId,
      };
    },

    /** Activates a started enrollment; returns the backup codes, or null for a wrong code. */
    async confirm(
      enrollmentId: string,
      code: unknown,
    ): Promise<{ username: string; backupCodes: string[] } | null> {
      if (typeof code !== 'string') throw new VerificationError('malformed', 'code must be a string');
      const pending = await deps.enrollments.getPending(enrollmentId);
      if (!pending)
        throw new VerificationError('not_found', 'unknown or expired enrollment; start a new one');
      const attemptsKey = taggedKey(deps.keyPrefix, 'enroll-attempts', enrollmentId);
      const attempts = await deps.redis
        .multi()
        .incr(attemptsKey)
        .expire(attemptsKey, PENDING_ENROLLMENT_TTL_SECONDS)
        .exec();
      if (Number(attempts?.[0]?.[1] ?? 0) > MAX_CONFIRM_ATTEMPTS) {
        throw new VerificationError('not_found', 'too many wrong codes for this enrollment; start a new one');
      }
      const secret = decryptSecret(deps.keyRing, pending.username, pending.secretCiphertext);
      const backupCodes = await activate(
        pending.username,
        secret,
        pending,
        'generated',
        code.replace(/\s/g, ''),
        enrollmentId,
      );
      return backupCodes.length ? { username: pending.username, backupCodes } : null;
    },

    /** Reuses the user's existing authenticator key; the code proves they hold it. */
    async importKey(input: {
      username: string;
      secret: string;
      code: string;
      algorithm?: unknown;
      digits?: unknown;
      period?: unknown;
    }): Promise<{ username: string; backupCodes: string[] } | null> {
      const username = normalizeUsername(input.username);
      if (!username) throw new VerificationError('malformed', 'username is empty');
      const params = totpParameters(input);
      let secret: string;
      try {
        secret = parseImportedSecret(input.secret);
      } catch (err) {
        if (err instanceof OtpInputError) throw new VerificationError('malformed', `secret: ${err.message}`);
        throw err;
      }
      await ensureNotEnrolled(username);
      const backupCodes = await activate(
        username,
        secret,
        params,
        'imported',
        String(input.code).replace(/\s/g, ''),
      );
      return backupCodes.length ? { username, backupCodes } : null;
    },

    /**
     * Removes a lost authenticator; the user enrolls again at the next login. Every code
     * verifier sees it at its next code: the enrollment version changes before the row goes
     * (so a replica cannot keep the old one under the old version) and again after (so one
     * that read the row in between cannot either). Refused with `unavailable`, nothing
     * changed, when Redis cannot record the first change; repeating a reset repeats both.
     *
     * The reset is announced before the row goes: the session broadcaster revokes the
     * user's verified sessions on it, and the audit records it. Announced after, a failed
     * publish left the row gone and the admin's retry found nothing to reset, so the lost
     * phone's sessions stayed verified and the audit never heard of it.
     */
    async reset(rawUsername: string, by: string): Promise<boolean> {
      const username = normalizeUsername(rawUsername);
      if (!(await deps.enrollments.get(username))) {
        await deps.enrollments.reset(username); // a pending enrollment, if any, goes too
        return false;
      }
      await invalidateKeptCopies(username, 'nothing was reset; try again');
      await orUnavailable(
        deps.producer.publishMany([
          {
            role: 'secondFactor',
            events: [createEvent('twofold.enrollment.reset', source, username, { by })],
          },
          {
            role: 'admin',
            events: [
              createEvent('twofold.admin.enrollment_reset', source, username, { actor: by, username }),
            ],
          },
        ]),
        'the reset could not be announced (Kafka); nothing was reset: try again',
      );
      await deps.enrollments.reset(username);
      await invalidateKeptCopies(
        username,
        'the authenticator was removed, but replicas may still accept it: reset again',
      );
      return true;
    },
  };
}
export type EnrollmentService = ReturnType<typeof createEnrollmentService>;
