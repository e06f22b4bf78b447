import { createHash } from 'node:crypto';
import { inTransaction, type Pool } from './pool.js';

export interface AppRecord {
  appId: string;
  name: string;
  webhookUrl: string | null;
  origins: string[];
  createdAt: Date;
}

/** Where and with which secret session webhooks go for one app. */
export interface WebhookTarget {
  appId: string;
  webhookUrl: string;
  webhookSecret: string;
  /** The secret a rotation replaced, while its grace period lasts: deliveries are signed with both. */
  previousWebhookSecret?: string;
}

/** The outcome of rotating an app's webhook secret. */
export interface RotatedWebhookSecret {
  secret: string;
  /** Until when the replaced secret still signs deliveries (null: not at all). */
  previousValidUntil: Date | null;
}

/** SHA-256 of an API key: keys are 256-bit random tokens, so a fast hash is enough. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

interface AppRow {
  app_id: string;
  name: string;
  webhook_url: string | null;
  origins: string[];
  created_at: Date;
}
const toApp = (row: AppRow): AppRecord => ({
  appId: row.app_id,
  name: row.name,
  webhookUrl: row.webhook_url,
  origins: row.origins,
  createdAt: row.created_at,
});

export function createAppsRepository(pool: Pool) {
  return {
    /**
     * Registers an app, or replaces its key and settings when it exists. `beforeCommit`
     * runs inside the transaction, after the change and before COMMIT, with the record and
     * whether it was created: when it throws, nothing changed and the error goes to the caller.
     */
    async upsert(
      app: {
        appId: string;
        name: string;
        keyHash: string;
        webhookUrl?: string | null;
        origins?: string[];
      },
      options: { beforeCommit?: (change: { app: AppRecord; created: boolean }) => Promise<void> } = {},
    ): Promise<AppRecord> {
      return inTransaction(pool, async (client) => {
        // xmax is 0 on a row version this statement inserted, not on one it updated.
        const { rows } = await client.query<AppRow & { created: boolean }>(
          `INSERT INTO apps (app_id, name, key_hash, webhook_url, origins) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (app_id) DO UPDATE SET name = EXCLUDED.name, key_hash = EXCLUDED.key_hash,
             webhook_url = EXCLUDED.webhook_url, origins = EXCLUDED.origins, disabled_at = NULL
           RETURNING app_id, name, webhook_url, origins, created_at, (xmax = 0) AS created`,
          [app.appId, app.name, app.keyHash, app.webhookUrl ?? null, app.origins ?? []],
        );
        const record = toApp(rows[0]!);
        await options.beforeCommit?.({ app: record, created: rows[0]!.created });
        return record;
      });
    },
    /**
     * A version that changes with every change to apps (a trigger bumps it): replicas poll
     * it to drop the app keys they keep as soon as one is rotated, replaced or disabled.
     */
    async version(): Promise<string> {
      const { rows } = await pool.query<{ version: string }>('SELECT version FROM apps_version WHERE id');
      return rows[0]?.version ?? '0';
    },
    async findByKeyHash(keyHash: string): Promise<AppRecord | undefined> {
      const { rows } = await pool.query<AppRow>(
        `SELECT app_id, name, webhook_url, origins, created_at FROM apps WHERE key_hash = $1 AND disabled_at IS NULL`,
        [keyHash],
      );
      return rows[0] ? toApp(rows[0]) : undefined;
    },
    async get(appId: string): Promise<AppRecord | undefined> {
      const { rows } = await pool.query<AppRow>(
        `SELECT app_id, name, webhook_url, origins, created_at FROM apps WHERE app_id = $1`,
        [appId],
      );
      return rows[0] ? toApp(rows[0]) : undefined;
    },
    /** Apps with a webhook URL, with their signing secret (the session broadcaster delivers to them). */
    async webhookTargets(): Promise<WebhookTarget[]> {
      const { rows } = await pool.query<{
        app_id: string;
        webhook_url: string;
        webhook_secret: string;
        previous_webhook_secret: string | null;
      }>(
        `SELECT app_id, webhook_url, webhook_secret,
                CASE WHEN previous_webhook_secret_until > now() THEN previous_webhook_secret END
                  AS previous_webhook_secret
           FROM apps WHERE webhook_url IS NOT NULL AND disabled_at IS NULL ORDER BY app_id`,
      );
      return rows.map((r) => ({
        appId: r.app_id,
        webhookUrl: r.webhook_url,
        webhookSecret: r.webhook_secret,
        ...(r.previous_webhook_secret ? { previousWebhookSecret: r.previous_webhook_secret } : {}),
      }));
    },
    /**
     * Replaces the app's webhook secret with `secret`; the one replaced still signs
     * deliveries for `graceSeconds` (0: not at all). Undefined when there is no such app.
     * `beforeCommit` runs inside the transaction, after the change and before COMMIT (only
     * when the app exists): when it throws, nothing changed and the error goes to the caller.
     */
    async rotateWebhookSecret(
      appId: string,
      secret: string,
      graceSeconds: number,
      options: { beforeCommit?: (rotated: RotatedWebhookSecret) => Promise<void> } = {},
    ): Promise<RotatedWebhookSecret | undefined> {
      return inTransaction(pool, async (client) => {
        const { rows } = await client.query<{ previous_webhook_secret_until: Date | null }>(
          `UPDATE apps SET previous_webhook_secret = CASE WHEN $3::int > 0 THEN webhook_secret END,
                  previous_webhook_secret_until = CASE WHEN $3::int > 0 THEN now() + make_interval(secs => $3::int) END,
                  webhook_secret = $2
            WHERE app_id = $1
            RETURNING previous_webhook_secret_until`,
          [appId, secret, graceSeconds],
        );
        if (!rows[0]) return undefined;
        const rotated = { secret, previousValidUntil: rows[0].previous_webhook_secret_until };
        await options.beforeCommit?.(rotated);
        return rotated;
      });
    },
    /** The app's webhook signing secret (`whsec_…`), generated when the app was registered. */
    async webhookSecret(appId: string): Promise<string | undefined> {
      const { rows } = await pool.query<{ webhook_secret: string }>(
        'SELECT webhook_secret FROM apps WHERE app_id = $1',
        [appId],
      );
      return rows[0]?.webhook_secret;
    },
    async list(): Promise<AppRecord[]> {
      const { rows } = await pool.query<AppRow>(
        `SELECT app_id, name, webhook_url, origins, created_at FROM apps WHERE disabled_at IS NULL ORDER BY app_id`,
      );
      return rows.map(toApp);
    },
  };
}
export type AppsRepository = ReturnType<typeof createAppsRepository>;
