import { Command } from 'commander';
import type { CliContext } from './context.js';

/** `twofold migrate`: apply the database migrations (as the Helm hook Job does). */
export function migrateCommand(ctx: CliContext): Command {
  return new Command('migrate')
    .description(
      'apply pending database migrations to DATABASE_URL, schema DATABASE_SCHEMA (default twofold)',
    )
    .action(async () => {
      const [{ runMigrations }, { readCliEnv }, { str, url }] = await Promise.all([
        import('@twofold/store'),
        import('./services.js'),
        import('@twofold/config'),
      ]);
      const settings = readCliEnv(
        { DATABASE_URL: url({}), DATABASE_SCHEMA: str({ default: 'twofold' }) },
        ctx.env,
      );
      const applied = await runMigrations({
        databaseUrl: settings.DATABASE_URL,
        schema: settings.DATABASE_SCHEMA,
      });
      ctx.io.out(
        applied.length
          ? `applied ${applied.length} migration(s) to schema ${settings.DATABASE_SCHEMA}: ${applied.join(', ')}`
          : `schema ${settings.DATABASE_SCHEMA} is up to date`,
      );
    });
}
