import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';

/** The folder of SQL migrations, beside src/ and dist/. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * Applies pending migrations to the schema (created when absent), under node-pg-migrate's
 * advisory lock so concurrent replicas or jobs do not race. Returns the names applied.
 */
export async function runMigrations(options: {
  databaseUrl: string;
  schema: string;
  log?: (message: string) => void;
}): Promise<string[]> {
  // Migrations read dates as times (partition bounds) in the session's TimeZone: UTC, set
  // on the session so neither the server's default nor options in the URL change it.
  const client = new pg.Client({ connectionString: options.databaseUrl });
  client.on('error', () => undefined); // the query in progress fails with it
  await client.connect();
  try {
    await client.query(`SET TIME ZONE 'UTC'`);
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      schema: options.schema,
      createSchema: true,
      count: Infinity,
      singleTransaction: true,
      // Migrations from parallel branches may land out of timestamp order.
      checkOrder: false,
      log: options.log ?? (() => undefined),
    });
    return applied.map((m) => m.name);
  } finally {
    await client.end().catch(() => undefined);
  }
}
