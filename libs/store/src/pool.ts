import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type QueryResultRow = pg.QueryResultRow;

// bigint (int8) as string is pg's safe default; timestamps stay Date.

/**
 * A pool whose connections use the twofold schema first on their search path, and UTC
 * (audit days and partition bounds are UTC days; a date read as a time uses the TimeZone).
 */
export function createPool(options: {
  url: string;
  schema: string;
  max?: number;
  applicationName?: string;
}): Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    options: `-c search_path=${quoteIdent(options.schema)},public -c TimeZone=UTC`,
    application_name: options.applicationName ?? 'twofold',
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', () => undefined);
  return pool;
}

export async function pingPostgres(pool: Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

// pg's pool listens for errors only on idle clients: a checked-out one that loses its server
// (57P01 when Postgres stops) would emit an unhandled 'error' and end the process. The
// query in progress rejects with the same error, so the listener has nothing more to do.
const errorReportedByTheQuery = () => undefined;

/** Checks a client out with an error listener for as long as it is held. */
export async function checkOut(
  pool: Pool,
): Promise<{ client: PoolClient; release(destroy?: boolean): void }> {
  const client = await pool.connect();
  client.on('error', errorReportedByTheQuery);
  return {
    client,
    release(destroy = false) {
      client.off('error', errorReportedByTheQuery);
      client.release(destroy);
    },
  };
}

/**
 * Runs fn in a transaction, rolling back on error; a client that cannot roll back is dropped.
 * `begin` may name the transaction's mode (e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ`).
 */
export async function inTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  const { client, release } = await checkOut(pool);
  try {
    await client.query(begin);
    const result = await fn(client);
    await client.query('COMMIT');
    release();
    return result;
  } catch (err) {
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    release(!rolledBack);
    throw err;
  }
}
