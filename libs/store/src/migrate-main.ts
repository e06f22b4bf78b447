// Entry point of the migration Job (Helm hook) and of the local stack's bootstrap.
import { loadCommonConfig } from '@twofold/config';
import { runMigrations } from './migrate.js';

const config = loadCommonConfig('migrate');
const applied = await runMigrations({ databaseUrl: config.database.url, schema: config.database.schema });
process.stdout.write(
  applied.length ? `applied migrations: ${applied.join(', ')}\n` : 'database schema is up to date\n',
);
