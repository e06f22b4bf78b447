/** The one door to Postgres: pool, migrations, repositories. */
export * from './pool.js';
export * from './refresh.js';
export * from './migrate.js';
export * from './apps.repository.js';
export * from './audit.repository.js';
export * from './policy.repository.js';
export * from './enrollments.repository.js';
export * from './audit-chain.js';
