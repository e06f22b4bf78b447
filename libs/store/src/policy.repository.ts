import type { PolicySettings, RuleModeValue } from '@twofold/contracts';
import { checkOut, type Pool } from './pool.js';

export type RuleKind = 'user' | 'group' | 'app';

export interface PolicyRule {
  kind: RuleKind;
  subject: string;
  mode: RuleModeValue;
  updatedAt: Date;
  updatedBy: string;
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
    async saveSettings(settings: PolicySettings, by: string): Promise<void> {
      await pool.query(
        'UPDATE policy_settings SET settings = $1, updated_at = now(), updated_by = $2, version = version + 1 WHERE id',
        [JSON.stringify(settings), by],
      );
    },
    async setRule(kind: RuleKind, subject: string, mode: RuleModeValue, by: string): Promise<void> {
      await pool.query(
        `INSERT INTO policy_rules (kind, subject, mode, updated_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (kind, subject) DO UPDATE SET mode = EXCLUDED.mode, updated_at = now(), updated_by = EXCLUDED.updated_by`,
        [kind, subject, mode, by],
      );
    },
    /** Returns whether a rule existed. */
    async deleteRule(kind: RuleKind, subject: string): Promise<boolean> {
      const result = await pool.query('DELETE FROM policy_rules WHERE kind = $1 AND subject = $2', [
        kind,
        subject,
      ]);
      return (result.rowCount ?? 0) > 0;
    },
  };
}
export type PolicyRepository = ReturnType<typeof createPolicyRepository>;
