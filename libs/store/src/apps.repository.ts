import { createHash } from 'node:crypto';
import type { Pool } from './pool.js';

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
    /** Registers an app, or replaces its key and settings when it exists. */
    async upsert(app: {
      appId: string;
      name: string;
      keyHash: string;
      webhookUrl?: string | null;
      origins?: string[];
    }) {
      const { rows } = await pool.query<AppRow>(
        `INSERT INTO apps (app_id, name, key_hash, webhook_url, origins) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (app_id) DO UPDATE SET name = EXCLUDED.name, key_hash = EXCLUDED.key_hash,
           webhook_url = EXCLUDED.webhook_url, origins = EXCLUDED.origins, disabled_at = NULL
         RETURNING app_id, name, webhook_url, origins, created_at`,
        [app.appId, app.name, app.keyHash, app.webhookUrl ?? null, app.origins ?? []],
      );
      return toApp(rows[0]!);
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
      const { rows } = await pool.query<{ app_id: string; webhook_url: string; webhook_secret: string }>(
        `SELECT app_id, webhook_url, webhook_secret FROM apps
          WHERE webhook_url IS NOT NULL AND disabled_at IS NULL ORDER BY app_id`,
      );
      return rows.map((r) => ({ appId: r.app_id, webhookUrl: r.webhook_url, webhookSecret: r.webhook_secret }));
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
