import type { PolicySettings, RuleModeValue } from '@twofold/contracts';
import { checkOut, inTransaction, type Pool } from './pool.js';

export type RuleKind = 'user' | 'group' | 'app';

export interface PolicyRule {
  kind: RuleKind;
  subject: string;
  mode: RuleModeValue;
  updatedAt: Date;
  updatedBy: string;
}

/**
 * Options of a policy change. `beforeCommit` runs inside the change's transaction, after
 * the change and before COMMIT: when it throws, the change is rolled back and the error
 * goes to the caller (the api announces the change there, so it stands only if audited).
 */
export interface PolicyChangeOptions {
  beforeCommit?: () => Promise<void>;
}

/** Everything the policy decision needs, as stored, with the version it was read at. */
export interface StoredPolicy {
  version: string;
  settings: Partial<PolicySettings>;
  rules: PolicyRule[];
}

export function createPolicyRepository(pool: Pool) {
  return {
    async version(): Promise<string> {
      const { rows } = await pool.query<{ version: string }>('SELECT version FROM policy_settings WHERE id');
      return rows[0]?.version ?? '0';
    },
    /** Reads settings and rules in one snapshot. */
    async load(): Promise<StoredPolicy> {
      const { client, release } = await checkOut(pool);
      let broken = false;
      try {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const settings = await client.query<{ version: string; settings: Partial<PolicySettings> }>(
          'SELECT version, settings FROM policy_settings WHERE id',
        );
        const rules = await client.query<{
          kind: RuleKind;
          subject: string;
          mode: RuleModeValue;
          updated_at: Date;
          updated_by: string;
        }>('SELECT kind, subject, mode, updated_at, updated_by FROM policy_rules ORDER BY kind, subject');
        await client.query('COMMIT');
        return {
          version: settings.rows[0]?.version ?? '0',
          settings: settings.rows[0]?.settings ?? {},
          rules: rules.rows.map((r) => ({
            kind: r.kind,
            subject: r.subject,
            mode: r.mode,
            updatedAt: r.updated_at,
            updatedBy: r.updated_by,
          })),
        };
      } catch (err) {
        broken = await client.query('ROLLBACK').then(
          () => false,
          () => true,
        );
        throw err;
      } finally {
        release(broken);
      }
    },
    async saveSettings(
      settings: PolicySettings,
      by: string,
      options: PolicyChangeOptions = {},
    ): Promise<void> {
      await inTransaction(pool, async (client) => {
        await client.query(
          'UPDATE policy_settings SET settings = $1, updated_at = now(), updated_by = $2, version = version + 1 WHERE id',
          [JSON.stringify(settings), by],
        );
        await options.beforeCommit?.();
      });
    },
    async setRule(
      kind: RuleKind,
      subject: string,
      mode: RuleModeValue,
      by: string,
      options: PolicyChangeOptions = {},
    ): Promise<void> {
      await inTransaction(pool, async (client) => {
        await client.query(
          `INSERT INTO policy_rules (kind, subject, mode, updated_by) VALUES ($1, $2, $3, $4)
           ON CONFLICT (kind, subject) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now(), updated_by = EXCLUDED.updated_by`,
          [kind, subject, mode, by],
        );
        await options.beforeCommit?.();
      });
    },
    /** Returns whether a rule existed; `beforeCommit` runs only when one did. */
    async deleteRule(kind: RuleKind, subject: string, options: PolicyChangeOptions = {}): Promise<boolean> {
      return inTransaction(pool, async (client) => {
        const result = await client.query('DELETE FROM policy_rules WHERE kind = $1 AND subject = $2', [
          kind,
          subject,
        ]);
        const existed = (result.rowCount ?? 0) > 0;
        if (existed) await options.beforeCommit?.();
        return existed;
      });
    },
  };
}
export type PolicyRepository = ReturnType<typeof createPolicyRepository>;
