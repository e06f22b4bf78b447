import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

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
  const applied = await runner({
    databaseUrl: options.databaseUrl,
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
}
