import type { Pool } from './pool.js';
import { inTransaction } from './pool.js';

export interface TotpSettingsRow {
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  digits: 6 | 8;
  period: number;
}

export interface Enrollment extends TotpSettingsRow {
  username: string;
  secretCiphertext: string;
  origin: 'generated' | 'imported';
  activatedAt: Date;
}

export interface PendingEnrollment extends TotpSettingsRow {
  enrollmentId: string;
  username: string;
  secretCiphertext: string;
  appId: string | null;
  expiresAt: Date;
}

export class AlreadyEnrolledError extends Error {
  readonly code = 'ALREADY_ENROLLED';
  constructor(readonly username: string) {
    super(`${username} already has an active authenticator`);
  }
}

export function createEnrollmentsRepository(pool: Pool) {
  return {
    async get(username: string): Promise<Enrollment | undefined> {
      const { rows } = await pool.query<{
        username: string;
        secret_ciphertext: string;
        algorithm: Enrollment['algorithm'];
        digits: number;
        period: number;
        origin: Enrollment['origin'];
        activated_at: Date;
      }>(
        'SELECT username, secret_ciphertext, algorithm, digits, period, origin, activated_at FROM enrollments WHERE username = $1',
        [username],
      );
      const r = rows[0];
      return r
        ? {
            username: r.username,
            secretCiphertext: r.secret_ciphertext,
            algorithm: r.algorithm,
            digits: r.digits as 6 | 8,
            period: r.period,
            origin: r.origin,
            activatedAt: r.activated_at,
          }
        : undefined;
    },
    /** Which of these users have an active secret (one query for a whole batch of logins). */
    async enrolledAmong(usernames: readonly string[]): Promise<Set<string>> {
      if (usernames.length === 0) return new Set();
      const { rows } = await pool.query<{ username: string }>(
        'SELECT username FROM enrollments WHERE username = ANY($1)',
        [[...new Set(usernames)]],
      );
      return new Set(rows.map((r) => r.username));
    },
    async createPending(p: Omit<PendingEnrollment, 'expiresAt'> & { ttlSeconds: number }): Promise<Date> {
      const { rows } = await pool.query<{ expires_at: Date }>(
        `INSERT INTO pending_enrollments (enrollment_id, username, secret_ciphertext, algorithm, digits, period, app_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8)) RETURNING expires_at`,
        [
          p.enrollmentId,
          p.username,
          p.secretCiphertext,
          p.algorithm,
          p.digits,
          p.period,
          p.appId,
          p.ttlSeconds,
        ],
      );
      return rows[0]!.expires_at;
    },
    async getPending(enrollmentId: string): Promise<PendingEnrollment | undefined> {
      const { rows } = await pool.query<{
        enrollment_id: string;
        username: string;
        secret_ciphertext: string;
        algorithm: Enrollment['algorithm'];
        digits: number;
        period: number;
        app_id: string | null;
        expires_at: Date;
      }>(
        `SELECT enrollment_id, username, secret_ciphertext, algorithm, digits, period, app_id, expires_at
           FROM pending_enrollments WHERE enrollment_id = $1 AND expires_at > now()`,
        [enrollmentId],
      );
      const r = rows[0];
      return r
        ? {
            enrollmentId: r.enrollment_id,
            username: r.username,
            secretCiphertext: r.secret_ciphertext,
            algorithm: r.algorithm,
            digits: r.digits as 6 | 8,
            period: r.period,
            appId: r.app_id,
            expiresAt: r.expires_at,
          }
        : undefined;
    },
    /**
     * Makes a secret the user's active one with fresh backup codes, in one transaction.
     * Throws AlreadyEnrolledError when the user has one (an admin reset comes first).
     * `beforeCommit` runs inside the transaction, after the change and before COMMIT: when
     * it throws, nothing is stored (the pending enrollment stays).
     */
    async activate(
      e: Omit<Enrollment, 'activatedAt'> & { backupCodeHashes: readonly string[]; pendingId?: string },
      options: { beforeCommit?: () => Promise<void> } = {},
    ): Promise<void> {
      await inTransaction(pool, async (client) => {
        const inserted = await client.query(
          `INSERT INTO enrollments (username, secret_ciphertext, algorithm, digits, period, origin)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (username) DO NOTHING`,
          [e.username, e.secretCiphertext, e.algorithm, e.digits, e.period, e.origin],
        );
        if (inserted.rowCount === 0) throw new AlreadyEnrolledError(e.username);
        await client.query('INSERT INTO backup_codes (username, code_hash) SELECT $1, unnest($2::text[])', [
          e.username,
          [...e.backupCodeHashes],
        ]);
        if (e.pendingId)
          await client.query('DELETE FROM pending_enrollments WHERE enrollment_id = $1', [e.pendingId]);
        await options.beforeCommit?.();
      });
    },
    /** Removes the user's secret, backup codes and pending enrollments; returns whether one existed. */
    async reset(username: string): Promise<boolean> {
      return inTransaction(pool, async (client) => {
        await client.query('DELETE FROM pending_enrollments WHERE username = $1', [username]);
        const deleted = await client.query('DELETE FROM enrollments WHERE username = $1', [username]);
        return (deleted.rowCount ?? 0) > 0;
      });
    },
    async unusedBackupCodeHashes(username: string): Promise<string[]> {
      const { rows } = await pool.query<{ code_hash: string }>(
        'SELECT code_hash FROM backup_codes WHERE username = $1 AND used_at IS NULL ORDER BY code_hash',
        [username],
      );
      return rows.map((r) => r.code_hash);
    },
    /** Marks a backup code used; false when another request used it first. */
    async consumeBackupCode(username: string, codeHash: string): Promise<boolean> {
      const result = await pool.query(
        'UPDATE backup_codes SET used_at = now() WHERE username = $1 AND code_hash = $2 AND used_at IS NULL',
        [username, codeHash],
      );
      return (result.rowCount ?? 0) === 1;
    },
    /** Streams every secret for key rotation, in pages. */
    async *allSecrets(pageSize = 500): AsyncGenerator<{ username: string; secretCiphertext: string }[]> {
      let after = '';
      for (;;) {
        const { rows } = await pool.query<{ username: string; secret_ciphertext: string }>(
          'SELECT username, secret_ciphertext FROM enrollments WHERE username > $1 ORDER BY username LIMIT $2',
          [after, pageSize],
        );
        if (rows.length === 0) return;
        yield rows.map((r) => ({ username: r.username, secretCiphertext: r.secret_ciphertext }));
        after = rows[rows.length - 1]!.username;
      }
    },
    /** Replaces a ciphertext only if it is still the one read (rotation racing a reset). */
    async replaceSecret(username: string, previous: string, next: string): Promise<boolean> {
      const result = await pool.query(
        'UPDATE enrollments SET secret_ciphertext = $3 WHERE username = $1 AND secret_ciphertext = $2',
        [username, previous, next],
      );
      return (result.rowCount ?? 0) === 1;
    },
    /**
     * Streams the secrets of unexpired pending enrollments for key rotation, in pages
     * (expired ones can no longer be read, and are deleted).
     */
    async *allPendingSecrets(
      pageSize = 500,
    ): AsyncGenerator<{ enrollmentId: string; username: string; secretCiphertext: string }[]> {
      let after = '00000000-0000-0000-0000-000000000000';
      for (;;) {
        const { rows } = await pool.query<{
          enrollment_id: string;
          username: string;
          secret_ciphertext: string;
        }>(
          `SELECT enrollment_id, username, secret_ciphertext FROM pending_enrollments
            WHERE enrollment_id > $1 AND expires_at > now() ORDER BY enrollment_id LIMIT $2`,
          [after, pageSize],
        );
        if (rows.length === 0) return;
        yield rows.map((r) => ({
          enrollmentId: r.enrollment_id,
          username: r.username,
          secretCiphertext: r.secret_ciphertext,
        }));
        after = rows[rows.length - 1]!.enrollment_id;
      }
    },
    /** Replaces a pending enrollment's ciphertext only if it is still the one read. */
    async replacePendingSecret(enrollmentId: string, previous: string, next: string): Promise<boolean> {
      const result = await pool.query(
        'UPDATE pending_enrollments SET secret_ciphertext = $3 WHERE enrollment_id = $1 AND secret_ciphertext = $2',
        [enrollmentId, previous, next],
      );
      return (result.rowCount ?? 0) === 1;
    },
    async deleteExpiredPending(): Promise<number> {
      const result = await pool.query('DELETE FROM pending_enrollments WHERE expires_at <= now()');
      return result.rowCount ?? 0;
    },
  };
}
export type EnrollmentsRepository = ReturnType<typeof createEnrollmentsRepository>;
