// The audit trail under concurrent upkeep and writes: `audit verify` reads one snapshot (rows
// committed or days dropped mid-run are no false alarm), moving rows out of DEFAULT loses
// none that the sink commits meanwhile, and partitions and migrations keep UTC days whatever
// the session's TimeZone.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAuditRepository,
  createPool,
  quoteIdent,
  runMigrations,
  verifyAuditChains,
  type AuditRow,
  type Pool,
  type PoolClient,
} from '@twofold/store';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;
let audit: ReturnType<typeof createAuditRepository>;

const today = new Date();
/** Noon (or the given hour) UTC, `days` from today. */
const dayAt = (days: number, hour = 12) =>
  new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + days, hour));
const dayOf = (days: number) => dayAt(days).toISOString().slice(0, 10);
const partitionOf = (days: number) => `audit_events_${dayOf(days).replaceAll('-', '')}`;

let offset = 0;
function rowsAt(time: Date, n: number, topic = 'twofold.test.v1'): AuditRow[] {
  return Array.from({ length: n }, () => ({
    eventId: randomUUID(),
    occurredAt: time,
    type: 'twofold.admin.policy_updated',
    source: 'service/api',
    appId: null,
    username: 'admin',
    session: null,
    ip: null,
    outcome: null,
    decision: null,
    reason: null,
    kafkaTopic: topic,
    kafkaPartition: 0,
    kafkaOffset: String(offset++),
    event: { n: offset },
  }));
}

/** Our URL with session options (a server or role whose default TimeZone is not UTC). */
function urlWithOptions(options: string): string {
  const url = new URL(world.config.database.url);
  url.searchParams.set('options', options);
  return url.toString();
}

/**
 * The pool, with `hook` run once right after verify has read the chain heads (whether verify
 * queries through the pool or through a client it checked out), before it reads any row.
 */
function afterHeadsRead(hook: () => Promise<void>): { pool: Pool; end(): Promise<void> } {
  const inner = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 1 });
  let fired = false;
  type Query = (...args: unknown[]) => Promise<unknown>;
  const hooked =
    (query: Query): Query =>
    async (...args) => {
      const result = await query(...args);
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (!fired && text.includes('head_hash') && text.includes('FROM audit_chains')) {
        fired = true;
        await hook();
      }
      return result;
    };
  const proxy = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'query') return hooked(target.query.bind(target) as Query);
      if (prop === 'connect')
        return async () => {
          const client = await target.connect();
          client.query = hooked(client.query.bind(client) as Query) as typeof client.query;
          return client;
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { pool: proxy, end: () => inner.end() };
}

/** Resolves once the backend is waiting for a lock, or once `done` settles (it never had to wait). */
async function untilWaitingOrDone(pid: number, done: Promise<unknown>): Promise<void> {
  let settled = false;
  void done.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    const { rows } = await pool.query<{ w: string | null }>(
      'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    if (rows[0]?.w === 'Lock') return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** One connection of its own (a second session), on the world's schema. */
async function dedicatedClient(): Promise<PoolClient & { close(): Promise<void> }> {
  const own = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 1 });
  const client = await own.connect();
  return Object.assign(client, {
    async close() {
      client.release();
      await own.end();
    },
  });
}

const where = async (eventId: string) =>
  (
    await pool.query<{ t: string }>(
      'SELECT tableoid::regclass::text AS t FROM audit_events WHERE event_id = $1',
      [eventId],
    )
  ).rows[0]?.t;

const boundsOf = async (partition: string) =>
  (
    await pool.query<{ bound: string }>(
      `SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c
        WHERE c.relname = $1 AND c.relnamespace = $2::regnamespace`,
      [partition, world.config.database.schema],
    )
  ).rows[0]?.bound;

beforeAll(async () => {
  world = await isolated('audit-consistency', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  audit = createAuditRepository(pool);
});

afterAll(async () => {
  await pool?.end();
  await world?.cleanup();
});

describe('audit verify on a live trail', () => {
  it('reads one snapshot: rows the sink chains on between the heads and the rows are no alarm', async () => {
    await audit.insertMany(rowsAt(dayAt(0), 3));
    const live = afterHeadsRead(async () => {
      // The sink goes on writing the same chain (and commits) mid-run.
      expect(await audit.insertMany(rowsAt(dayAt(0), 2))).toBe(2);
    });
    try {
      const report = await verifyAuditChains(live.pool);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, chains: 1, rows: 3 });
    } finally {
      await live.end();
    }
    // And the chain as it is now checks out in full.
    expect(await verifyAuditChains(pool)).toMatchObject({ ok: true, rows: 5 });
  });

  it('a day that retention drops mid-run is no alarm: the drop waits for verify', async () => {
    await pool.query('SELECT ensure_audit_partitions(10, 0)');
    await audit.insertMany(rowsAt(dayAt(-10), 2, 'twofold.old.v1'));
    const dropper = await dedicatedClient();
    let dropped: Promise<unknown> | undefined;
    const live = afterHeadsRead(async () => {
      const { rows } = await dropper.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      dropped = dropper.query('SELECT drop_audit_partitions(8) AS name');
      await untilWaitingOrDone(rows[0]!.pid, dropped);
    });
    try {
      const report = await verifyAuditChains(live.pool);
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, chains: 2, rows: 7 });
      const done = (await dropped) as { rows: { name: string }[] };
      expect(done.rows.map((r) => r.name)).toContain(partitionOf(-10));
    } finally {
      await live.end();
      await dropper.close();
    }
    expect(await verifyAuditChains(pool)).toMatchObject({ ok: true, chains: 1, rows: 5 });
  });

  it('takes --from/--to as UTC days whatever the session TimeZone', async () => {
    const ny = createPool({
      url: urlWithOptions(`-c search_path=${world.config.database.schema} -c TimeZone=America/New_York`),
      schema: world.config.database.schema,
      max: 1,
    });
    // 02:00 UTC is still the day before in New York.
    const forged = randomUUID();
    await pool.query(
      `INSERT INTO audit_events (event_id, occurred_at, type, source, kafka_topic, kafka_partition, kafka_offset, event)
       VALUES ($1, $2, 't', 's', 'twofold.forged.v1', 0, 0, '{}')`,
      [forged, dayAt(0, 2).toISOString()],
    );
    try {
      expect((await ny.query<{ tz: string }>(`SELECT current_setting('TimeZone') AS tz`)).rows[0]!.tz).toBe(
        'America/New_York',
      );
      const report = await verifyAuditChains(ny, { fromDay: dayOf(0), toDay: dayOf(0) });
      expect(report.problems).toEqual([expect.objectContaining({ kind: 'unchained', eventId: forged })]);
      const before = await verifyAuditChains(ny, { fromDay: dayOf(-1), toDay: dayOf(-1) });
      expect(before.problems).toEqual([]);
    } finally {
      await ny.end();
      await pool.query('DELETE FROM audit_events WHERE event_id = $1', [forged]);
    }
  });
});

describe('partition upkeep', () => {
  it('moves a day out of DEFAULT in one statement: a row committed during the move is moved, not lost', async () => {
    // Every day up to +29 exists, so the run below creates +30 only.
    await pool.query('SELECT ensure_audit_partitions(0, 29)');
    const [early] = rowsAt(dayAt(30, 9), 1);
    const [later] = rowsAt(dayAt(40), 1);
    await audit.insertMany([early!, later!]);
    expect(await where(early!.eventId)).toBe('audit_events_default');

    // A writer holds DEFAULT against deletes (SHARE: reads go on) with one more row of that
    // day not yet committed; it commits once the upkeep waits for it.
    const writer = await dedicatedClient();
    const upkeep = await dedicatedClient();
    const racer = randomUUID();
    try {
      await writer.query('BEGIN');
      await writer.query('LOCK TABLE audit_events_default IN SHARE MODE');
      await writer.query(
        `INSERT INTO audit_events (event_id, occurred_at, type, source, kafka_topic, kafka_partition, kafka_offset, event)
         VALUES ($1, $2, 't', 's', 'twofold.racer.v1', 0, 0, '{}')`,
        [racer, dayAt(30, 15).toISOString()],
      );
      const { rows } = await upkeep.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const run = upkeep.query<{ n: number }>('SELECT ensure_audit_partitions(0, 30) AS n');
      await untilWaitingOrDone(rows[0]!.pid, run);
      await writer.query('COMMIT');
      expect((await run).rows[0]!.n).toBe(1);
    } finally {
      await writer.query('ROLLBACK').catch(() => undefined);
      await writer.close();
      await upkeep.close();
    }
    expect(await where(racer)).toBe(partitionOf(30));
    expect(await where(early!.eventId)).toBe(partitionOf(30));
    expect(await where(later!.eventId)).toBe('audit_events_default');
    await pool.query('DELETE FROM audit_events WHERE event_id = $1', [racer]);
  });

  it('creates partitions with UTC-midnight bounds in a session on another TimeZone', async () => {
    const client = await dedicatedClient();
    try {
      await client.query(`SET TIME ZONE 'America/New_York'`);
      await client.query('SELECT ensure_audit_partitions(0, 33)');
    } finally {
      await client.close();
    }
    for (const days of [31, 32, 33])
      expect(await boundsOf(partitionOf(days))).toBe(
        `FOR VALUES FROM ('${dayOf(days)} 00:00:00+00') TO ('${dayOf(days + 1)} 00:00:00+00')`,
      );
  });

  it('migrates in UTC: the first partitions start at UTC midnight even if the session says otherwise', async () => {
    const schema = `t_audit_tz_${randomUUID().slice(0, 8)}`;
    try {
      await runMigrations({ databaseUrl: urlWithOptions('-c TimeZone=America/New_York'), schema });
      const { rows } = await pool.query<{ name: string; bound: string }>(
        `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c
          WHERE c.relnamespace = $1::regnamespace AND c.relname ~ '^audit_events_[0-9]{8}$' ORDER BY 1`,
        [schema],
      );
      expect(rows.length).toBeGreaterThanOrEqual(22);
      for (const { name, bound } of rows) {
        const day = `${name.slice(13, 17)}-${name.slice(17, 19)}-${name.slice(19, 21)}`;
        expect(bound).toMatch(
          new RegExp(`^FOR VALUES FROM \\('${day} 00:00:00\\+00'\\) TO \\('[0-9-]+ 00:00:00\\+00'\\)$`),
        );
      }
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    }
  });

  it('gives the pool sessions UTC, not the server default', async () => {
    expect((await pool.query<{ tz: string }>(`SELECT current_setting('TimeZone') AS tz`)).rows[0]!.tz).toBe(
      'UTC',
    );
  });
});
