import type { TotpAlgorithm, TotpDigits } from '@twofold/otp';
import type { Pool } from '@twofold/store';
import { createEnrollmentCache } from './enrollment-cache.js';

/**
 * A user's authenticator as stored: the secret still encrypted (AES-256-GCM under the key
 * ring, bound to the username), and its TOTP settings. The verifier puts it in the
 * challenge it creates, so the api answers the challenge without reading Postgres; the
 * replay guard's version check makes sure it is still the user's current one.
 */
export interface SealedEnrollment {
  readonly ciphertext: string;
  readonly algorithm: TotpAlgorithm;
  readonly digits: TotpDigits;
  readonly period: number;
}

/**
 * The sealed enrollments of a batch of users, in one query (the verifier's one query per
 * batch: who is enrolled, and with what). Same table and columns as the enrollments
 * repository of @twofold/store reads one at a time.
 */
export async function readSealedEnrollments(
  pool: Pool,
  usernames: readonly string[],
): Promise<Map<string, SealedEnrollment>> {
  if (usernames.length === 0) return new Map();
  const { rows } = await pool.query<{
    username: string;
    secret_ciphertext: string;
    algorithm: TotpAlgorithm;
    digits: number;
    period: number;
  }>(
    'SELECT username, secret_ciphertext, algorithm, digits, period FROM enrollments WHERE username = ANY($1)',
    [[...new Set(usernames)]],
  );
  return new Map(
    rows.map((r) => [
      r.username,
      {
        ciphertext: r.secret_ciphertext,
        algorithm: r.algorithm,
        digits: r.digits as TotpDigits,
        period: r.period,
      },
    ]),
  );
}

/**
 * {@link readSealedEnrollments} that remembers: each user's row (or that the user has none)
 * is kept under the enrollment version token read before it, so a user whose token is
 * unchanged costs no query (most logins: one user signs in to several apps). Enrolling,
 * replacing or resetting an authenticator changes the token (see the enrollment service),
 * so a copy is never used after it. A user whose token could not be read is always read.
 * "Not enrolled" is kept a shorter time (`maxNoneAgeMs`): were a token change lost, the
 * mistake would be to skip a user who enrolled, not to challenge one who has none.
 */
export function createSealedEnrollmentReader(
  pool: Pool,
  options: { maxEntries?: number; maxAgeMs?: number; maxNoneAgeMs?: number } = {},
) {
  const maxAgeMs = options.maxAgeMs ?? 60 * 60_000;
  const maxNoneAgeMs = options.maxNoneAgeMs ?? 60_000;
  const cache = createEnrollmentCache<{ version: string; readAt: number; sealed: SealedEnrollment | null }>({
    maxEntries: options.maxEntries ?? 100_000,
    maxAgeMs: (entry) => (entry.sealed ? maxAgeMs : maxNoneAgeMs),
  });
  /** `versions[i]`: the token of `usernames[i]`, read before this call (undefined: unknown). */
  return async function readUnderVersions(
    usernames: readonly string[],
    versions: readonly (string | undefined)[],
  ): Promise<Map<string, SealedEnrollment>> {
    const readAt = Date.now();
    const found = new Map<string, SealedEnrollment>();
    const missed: number[] = [];
    usernames.forEach((username, i) => {
      const version = versions[i];
      const kept = version === undefined ? undefined : cache.get(username, readAt);
      if (!kept || kept.version !== version) missed.push(i);
      else if (kept.sealed) found.set(username, kept.sealed);
    });
    if (missed.length === 0) return found;
    const read = await readSealedEnrollments(
      pool,
      missed.map((i) => usernames[i]!),
    );
    for (const i of missed) {
      const username = usernames[i]!;
      const sealed = read.get(username);
      if (sealed) found.set(username, sealed);
      const version = versions[i];
      if (version !== undefined) cache.set(username, { version, readAt, sealed: sealed ?? null });
    }
    return found;
  };
}
