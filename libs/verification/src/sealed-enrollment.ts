import type { TotpAlgorithm, TotpDigits } from '@twofold/otp';
import type { Pool } from '@twofold/store';

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
