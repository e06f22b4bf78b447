import { randomUUID } from 'node:crypto';
import { createEvent, normalizeUsername } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import {
  OtpInputError,
  SecretDecryptionError,
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
import { AlreadyEnrolledError, type EnrollmentsRepository, type PendingEnrollment } from '@twofold/store';
import { VerificationError, orUnavailable } from './errors.js';

export const PENDING_ENROLLMENT_TTL_SECONDS = 15 * 60;
export const MAX_CONFIRM_ATTEMPTS = 5;

// What a store or Kafka failure tells the caller (503): what did not happen, and what to do.
const POSTGRES_DOWN = 'the stored authenticators are unavailable (Postgres); nothing was enrolled: try again';
const REDIS_DOWN = 'the enrollment state is unavailable (Redis); nothing was enrolled: try again';
// A retry may use the same code: enrolling records its step but does not need a fresh one.
const NOT_ANNOUNCED =
  'the enrollment could not be recorded (Kafka); nothing was enrolled: try again with the code your app shows now';
const UNKNOWN_PENDING = 'unknown or expired enrollment; start a new one';

/**
 * {@link orUnavailable} for Postgres work, except input Postgres refuses (a data exception,
 * class 22: NUL in a username): that stays the caller's error, a 400 at the api.
 */
async function fromPostgres<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (isDataException(err)) throw err;
    throw new VerificationError('unavailable', message);
  }
}

const isDataException = (err: unknown) => String((err as { code?: unknown } | null)?.code).startsWith('22');

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
  /** TOTP steps accepted either side of now: the code verifier's (TOTP_WINDOW), default 1. */
  window?: number;
}) {
  const source = deps.source ?? 'service/api';
  const issuer = deps.issuer ?? 'twofold';
  const windowOption = deps.window !== undefined ? { window: deps.window } : {};

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
    if (await fromPostgres(deps.enrollments.get(username), POSTGRES_DOWN)) {
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
    // The same window as the code verifier's: its replay guard then outlives every step in
    // which the verifier would still take the confirming code.
    const result = await verifyTotp(secret, code, { ...params, ...windowOption });
    if (!result.valid) return [];
    // The confirming code is spent: it cannot answer a challenge afterwards. (Enrolling does
    // not require a step not seen before, so a retry after a refusal below may reuse it.)
    await orUnavailable(
      acceptTimeStep(deps.redis, deps.keyPrefix, username, result.timeStep, {
        period: params.period,
        ...windowOption,
      }),
      REDIS_DOWN,
    );
    // A new version token before the row is stored: a login verifier keeps "not enrolled"
    // under the token it read, and must not go on answering it (a voluntary user skipped)
    // should the change after the commit not reach Redis.
    await invalidateKeptCopies(username, 'nothing was enrolled; try again');
    const backupCodes = generateBackupCodes();
    const row = {
      username,
      secretCiphertext: encryptSecret(deps.keyRing, username, secret),
      ...params,
      origin,
      backupCodeHashes: await hashBackupCodes(backupCodes),
      ...(pendingId ? { pendingId } : {}),
    };
    try {
      // Announced inside the transaction, committed only once announced: a failed publish
      // after the commit left the user enrolled with backup codes never shown, unaudited,
      // and the retry found the pending enrollment gone (404) or the user enrolled (409).
      await deps.enrollments.activate(row, {
        beforeCommit: () =>
          orUnavailable(
            deps.producer.publish('secondFactor', [
              createEvent('twofold.enrollment.activated', source, username, { method: origin }),
            ]),
            NOT_ANNOUNCED,
          ),
      });
    } catch (err) {
      if (err instanceof VerificationError) throw err;
      if (err instanceof AlreadyEnrolledError) throw new VerificationError('conflict', err.message);
      if (isDataException(err)) throw err;
      throw new VerificationError('unavailable', POSTGRES_DOWN);
    }
    // Again after the commit, for a copy read between the change above and the commit: best
    // effort, since failing here would lose the backup codes of an enrollment that is active.
    await bumpEnrollmentVersion(deps.redis, deps.keyPrefix, username).catch(() => undefined);
    return backupCodes;
  }

  async function pendingOf(enrollmentId: string): Promise<PendingEnrollment> {
    const pending = await fromPostgres(
      deps.enrollments.getPending(enrollmentId),
      'the pending enrollment cannot be read (Postgres); try again',
    );
    if (!pending) throw new VerificationError('not_found', UNKNOWN_PENDING);
    return pending;
  }

  /** The pending enrollment's secret; `conflict` when its key left the key ring (or it was altered). */
  function pendingSecret(pending: PendingEnrollment): string {
    try {
      return decryptSecret(deps.keyRing, pending.username, pending.secretCiphertext);
    } catch (err) {
      if (!(err instanceof SecretDecryptionError)) throw err;
      throw new VerificationError(
        'conflict',
        `this enrollment can no longer be completed (its key cannot be read); start enrollment again`,
      );
    }
  }

  /** Counts a confirmation attempt; false past the limit. */
  async function takeAttempt(enrollmentId: string): Promise<boolean> {
    const attemptsKey = taggedKey(deps.keyPrefix, 'enroll-attempts', enrollmentId);
    const replies = await orUnavailable(
      deps.redis.multi().incr(attemptsKey).expire(attemptsKey, PENDING_ENROLLMENT_TTL_SECONDS).exec(),
      REDIS_DOWN,
    );
    const [err, attempts] = replies?.[0] ?? [new Error('the transaction was discarded'), undefined];
    if (err) throw new VerificationError('unavailable', REDIS_DOWN);
    return Number(attempts) <= MAX_CONFIRM_ATTEMPTS;
  }

  /** Gives back an attempt taken by a right code that could not be enrolled (best effort). */
  async function returnAttempt(enrollmentId: string): Promise<void> {
    await deps.redis.decr(taggedKey(deps.keyPrefix, 'enroll-attempts', enrollmentId)).catch(() => undefined);
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
      const expiresAt = await fromPostgres(
        deps.enrollments.createPending({
          enrollmentId,
          username,
          secretCiphertext: encryptSecret(deps.keyRing, username, secret),
          ...params,
          appId: input.appId,
          ttlSeconds: PENDING_ENROLLMENT_TTL_SECONDS,
        }),
        POSTGRES_DOWN,
      );
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
      const pending = await pendingOf(enrollmentId);
      const secret = pendingSecret(pending);
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

    /**
     * Activates a started enrollment; returns the backup codes, or null for a wrong code.
     * With `appId` (the api's route), a pending enrollment another app started is
     * `not_found`, as if there were none, and counts no attempt; the hosted page and the
     * CLI pass none.
     */
    async confirm(
      enrollmentId: string,
      code: unknown,
      options: { appId?: string } = {},
    ): Promise<{ username: string; backupCodes: string[] } | null> {
      if (typeof code !== 'string') throw new VerificationError('malformed', 'code must be a string');
      const pending = await pendingOf(enrollmentId);
      if (options.appId !== undefined && pending.appId !== options.appId) {
        throw new VerificationError('not_found', UNKNOWN_PENDING);
      }
      const secret = pendingSecret(pending);
      // Before any step is spent: a leftover pending enrollment's code would otherwise be
      // recorded as the enrolled user's last step, refusing their real code as a replay.
      await ensureNotEnrolled(pending.username);
      if (!(await takeAttempt(enrollmentId))) {
        throw new VerificationError('not_found', 'too many wrong codes for this enrollment; start a new one');
      }
      let backupCodes: string[];
      try {
        backupCodes = await activate(
          pending.username,
          secret,
          pending,
          'generated',
          code.replace(/\s/g, ''),
          enrollmentId,
        );
      } catch (err) {
        // A right code that could not be enrolled is not a wrong one: the retry is free.
        if (err instanceof VerificationError && err.code === 'unavailable') await returnAttempt(enrollmentId);
        throw err;
      }
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
     * With no row it still changes the version before answering (false): the admin's retry
     * of a reset whose change after the DELETE failed finds no row, and a replica that read
     * the row before the DELETE would otherwise keep accepting the lost phone's codes.
     *
     * The reset is announced before the row goes: the session broadcaster revokes the
     * user's verified sessions on it, and the audit records it. Announced after, a failed
     * publish left the row gone and the admin's retry found nothing to reset, so the lost
     * phone's sessions stayed verified and the audit never heard of it.
     */
    async reset(rawUsername: string, by: string): Promise<boolean> {
      const username = normalizeUsername(rawUsername);
      const postgres = <T>(work: Promise<T>) =>
        fromPostgres(
          work,
          'the stored authenticators are unavailable (Postgres); nothing was reset: try again',
        );
      if (!(await postgres(deps.enrollments.get(username)))) {
        await postgres(deps.enrollments.reset(username)); // a pending enrollment, if any, goes too
        // Also with no row: this may be the retry of a reset whose last change failed.
        await invalidateKeptCopies(
          username,
          'replicas may still accept a removed authenticator: reset again',
        );
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
      await postgres(deps.enrollments.reset(username));
      await invalidateKeptCopies(
        username,
        'the authenticator was removed, but replicas may still accept it: reset again',
      );
      return true;
    },
  };
}
export type EnrollmentService = ReturnType<typeof createEnrollmentService>;
