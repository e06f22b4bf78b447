import { afterAll, describe, expect, it } from 'vitest';
import { createPool, inTransaction } from '@twofold/store';
import { stackEnv } from '../support/stack.js';

// Postgres ending a connection that a transaction holds (what a restart or failover does):
// the transaction fails and the pool goes on; the process must not die of an unhandled 'error'.
describe('store: a held connection that Postgres ends', () => {
  const env = stackEnv();
  const pool = createPool({ url: env['DATABASE_URL']!, schema: 'public', max: 2 });
  const admin = createPool({ url: env['DATABASE_URL']!, schema: 'public', max: 1 });
  afterAll(async () => {
    await pool.end();
    await admin.end();
  });

  it('fails the transaction with the server error, emits nothing unhandled, and the pool serves the next query', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.prependListener('uncaughtException', onUncaught);
    try {
      const outcome = inTransaction(pool, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        // The server's notice arrives while the client sits idle in the transaction.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await client.query('SELECT 1');
      });
      await expect(outcome).rejects.toThrow(/terminat|connection error/i);
      expect(uncaught).toEqual([]);
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      expect(rows[0]!.one).toBe(1);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
    }
  });
});
