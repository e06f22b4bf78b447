import {
  canonicalIp,
  canonicalJson,
  chainLinkHash,
  storableText,
  storableTextOrNull,
  type ChainedContent,
} from './audit-chain.js';
import { CopyBinaryWriter, copyBinary } from './audit-copy.js';
import type { Pool, PoolClient } from './pool.js';

/** One row of audit_events, with the columns analysts filter on lifted out of the JSON. */
export interface AuditRow {
  eventId: string;
  occurredAt: Date;
  type: string;
  source: string;
  appId: string | null;
  username: string | null;
  session: string | null;
  ip: string | null;
  outcome: string | null;
  decision: string | null;
  reason: string | null;
  kafkaTopic: string;
  kafkaPartition: number;
  kafkaOffset: string;
  event: unknown;
  /** When the sink stored it; now when absent. */
  receivedAt?: Date;
}

/** What a writer of the audit trail needs (the sink takes this, so tests can wrap it). */
export interface AuditWriter {
  /**
   * Stores rows once each (a row whose (event id, time) is stored already is skipped) and
   * extends the hash chains with the new ones only, in one transaction. Returns how many
   * were inserted; the rest were duplicates.
   */
  insertMany(rows: readonly AuditRow[]): Promise<number>;
}

/** A thrown error meaning "try the batch again": another writer raced this one. */
export class AuditWriteConflictError extends Error {
  readonly code = 'AUDIT_WRITE_CONFLICT';
  readonly retriable = true;
  constructor(detail: string) {
    super(detail);
    this.name = 'AuditWriteConflictError';
  }
}

const COLUMNS = [
  'event_id',
  'occurred_at',
  'received_at',
  'type',
  'source',
  'app_id',
  'username',
  'session',
  'ip',
  'outcome',
  'decision',
  'reason',
  'kafka_topic',
  'kafka_partition',
  'kafka_offset',
  'event',
  'chain_id',
  'seq',
  'prev_hash',
  'row_hash',
] as const;
// Rows go in by binary COPY (audit-copy.ts), in COLUMNS order. COPY has no ON CONFLICT: a
// row stored already fails the whole COPY with a unique violation, and insertMany then
// takes the slower path that leaves the stored rows out (redeliveries only).
const COPY_TARGET = `audit_events (${COLUMNS.join(', ')})`;
const UNIQUE_VIOLATION = '23505';

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === UNIQUE_VIOLATION;
}

/** A row made storable, with its chain key; hashed once its chain position is known. */
interface PreparedRow extends Omit<ChainedContent, 'seq'> {
  chainKey: string;
  day: string;
  occurredAtMs: number;
  receivedAtMs: number;
}

function prepare(row: AuditRow, receivedAt: Date): PreparedRow {
  const received = row.receivedAt ?? receivedAt;
  const occurredAt = row.occurredAt.toISOString();
  const kafkaTopic = storableText(row.kafkaTopic);
  const day = occurredAt.slice(0, 10);
  return {
    chainKey: `${kafkaTopic}\u0000${row.kafkaPartition}\u0000${day}`,
    day,
    occurredAtMs: row.occurredAt.getTime(),
    eventId: storableText(row.eventId),
    occurredAt,
    receivedAt: received.toISOString(),
    receivedAtMs: received.getTime(),
    type: storableText(row.type),
    source: storableText(row.source),
    appId: storableTextOrNull(row.appId),
    username: storableTextOrNull(row.username),
    session: storableTextOrNull(row.session),
    ip: canonicalIp(row.ip),
    outcome: storableTextOrNull(row.outcome),
    decision: storableTextOrNull(row.decision),
    reason: storableTextOrNull(row.reason),
    kafkaTopic,
    kafkaPartition: row.kafkaPartition,
    kafkaOffset: row.kafkaOffset,
    eventJson: canonicalJson(row.event),
  };
}

interface ChainHeadRow {
  chain_id: number;
  kafka_topic: string;
  kafka_partition: number;
  day: string;
  head_seq: string;
  head_hash: Buffer;
}

/**
 * Locks the chains these rows extend (creating the ones that are new), in a fixed order
 * so two writers never deadlock, and returns their heads by chain key.
 */
async function lockChains(
  client: PoolClient,
  rows: readonly PreparedRow[],
): Promise<Map<string, ChainHeadRow>> {
  const keys = new Map<string, PreparedRow>();
  for (const row of rows) if (!keys.has(row.chainKey)) keys.set(row.chainKey, row);
  const ordered = [...keys.values()].sort((a, b) =>
    a.chainKey < b.chainKey ? -1 : a.chainKey > b.chainKey ? 1 : 0,
  );
  const params = [
    ordered.map((r) => r.kafkaTopic),
    ordered.map((r) => r.kafkaPartition),
    ordered.map((r) => r.day),
  ];
  await client.query(
    `INSERT INTO audit_chains (kafka_topic, kafka_partition, day)
     SELECT * FROM unnest($1::text[], $2::int4[], $3::date[])
     ON CONFLICT (kafka_topic, kafka_partition, day) DO NOTHING`,
    params,
  );
  const { rows: heads } = await client.query<ChainHeadRow>(
    `SELECT chain_id, kafka_topic, kafka_partition, to_char(day, 'YYYY-MM-DD') AS day, head_seq, head_hash
       FROM audit_chains
      WHERE (kafka_topic, kafka_partition, day) IN (SELECT * FROM unnest($1::text[], $2::int4[], $3::date[]))
      ORDER BY kafka_topic, kafka_partition, day
      FOR UPDATE`,
    params,
  );
  return new Map(heads.map((h) => [`${h.kafka_topic}\u0000${h.kafka_partition}\u0000${h.day}`, h]));
}

/**
 * Copies rows in as the next links of their chains and moves the chain heads. Throws the
 * unique violation when a row is stored already (nothing of the batch is then stored).
 */
async function insertChained(
  client: PoolClient,
  rows: readonly PreparedRow[],
  heads: Map<string, ChainHeadRow>,
): Promise<void> {
  const copy = new CopyBinaryWriter(rows.length * 1_024);
  const tips = new Map<string, { chainId: number; seq: bigint; hash: Buffer }>();
  for (const row of rows) {
    let tip = tips.get(row.chainKey);
    if (!tip) {
      const head = heads.get(row.chainKey);
      if (!head) throw new AuditWriteConflictError(`chain ${row.chainKey} vanished while locked`);
      tip = { chainId: head.chain_id, seq: BigInt(head.head_seq), hash: head.head_hash };
      tips.set(row.chainKey, tip);
    }
    const prevHash = tip.hash;
    tip.seq += 1n;
    tip.hash = chainLinkHash(prevHash, tip.seq.toString(), row);
    // In COLUMNS order.
    copy.row(COLUMNS.length);
    copy.text(row.eventId);
    copy.timestamptz(row.occurredAtMs);
    copy.timestamptz(row.receivedAtMs);
    copy.text(row.type);
    copy.text(row.source);
    copy.textOrNull(row.appId);
    copy.textOrNull(row.username);
    copy.textOrNull(row.session);
    copy.inet(row.ip);
    copy.textOrNull(row.outcome);
    copy.textOrNull(row.decision);
    copy.textOrNull(row.reason);
    copy.text(row.kafkaTopic);
    copy.int4(row.kafkaPartition);
    copy.int8(BigInt(row.kafkaOffset));
    copy.jsonb(row.eventJson);
    copy.int4(tip.chainId);
    copy.int8(tip.seq);
    copy.bytea(prevHash);
    copy.bytea(tip.hash);
  }
  await copyBinary(client, COPY_TARGET, copy.end());
  const updates = [...tips.values()];
  await client.query(
    `UPDATE audit_chains c SET head_seq = v.seq, head_hash = v.hash, updated_at = now()
       FROM unnest($1::int4[], $2::int8[], $3::bytea[]) AS v(chain_id, seq, hash)
      WHERE c.chain_id = v.chain_id`,
    [updates.map((u) => u.chainId), updates.map((u) => u.seq.toString()), updates.map((u) => u.hash)],
  );
}

/** Told of a connection lost while a batch held it (the batch's query fails and is retried). */
export type ConnectionErrorListener = (err: Error) => void;

async function transaction<T>(
  pool: Pool,
  onConnectionError: ConnectionErrorListener,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  // pg's pool listens for 'error' only on idle clients: a checked-out one whose server goes
  // away (57P01 when Postgres stops) emits it with no listener, which ends the process.
  // The query in progress rejects with that error too, so the batch is retried.
  client.on('error', onConnectionError);
  const release = (destroy?: boolean) => {
    client.off('error', onConnectionError);
    client.release(destroy);
  };
  let result: T;
  try {
    await client.query('BEGIN');
    result = await fn(client);
    await client.query('COMMIT');
  } catch (err) {
    // A connection that cannot even roll back (Postgres went away) is dropped, not reused.
    const rolledBack = await client.query('ROLLBACK').then(
      () => true,
      () => false,
    );
    release(!rolledBack);
    throw err;
  }
  release();
  return result;
}

export interface AuditSearchFilter {
  username?: string;
  appId?: string;
  /** An exact type, or a prefix ending in `*` (e.g. `twofold.admin.*`). */
  type?: string;
  from?: Date;
  to?: Date;
  /** Position after which to continue, newest first (from a previous page). */
  after?: { occurredAt: string; eventId: string };
  limit: number;
}

export interface AuditSearchRow {
  eventId: string;
  occurredAt: Date;
  /** occurred_at to the microsecond, UTC (the cursor position). */
  occurredAtExact: string;
  receivedAt: Date;
  type: string;
  source: string;
  appId: string | null;
  username: string | null;
  session: string | null;
  ip: string | null;
  outcome: string | null;
  decision: string | null;
  reason: string | null;
  kafkaTopic: string;
  kafkaPartition: number;
  kafkaOffset: string;
  event: unknown;
}

export function createAuditRepository(
  pool: Pool,
  options: { onConnectionError?: ConnectionErrorListener } = {},
) {
  const onConnectionError = options.onConnectionError ?? (() => undefined);
  return {
    /**
     * Inserts a batch in one transaction: locks the chains it extends, copies all rows in
     * (binary COPY) assuming they are new, and moves the chain heads. When some were stored
     * already (a redelivered batch), it starts over and inserts only the new ones, so a
     * duplicate never takes a place in a chain. Returns the number inserted.
     */
    async insertMany(rows: readonly AuditRow[]): Promise<number> {
      if (rows.length === 0) return 0;
      const receivedAt = new Date();
      const seen = new Set<string>();
      const prepared: PreparedRow[] = [];
      for (const row of rows) {
        const p = prepare(row, receivedAt);
        const key = `${p.eventId}\u0000${p.occurredAtMs}`;
        if (seen.has(key)) continue; // the same event twice in one batch
        seen.add(key);
        prepared.push(p);
      }
      try {
        return await transaction(pool, onConnectionError, async (client) => {
          const heads = await lockChains(client, prepared);
          await insertChained(client, prepared, heads);
          return prepared.length;
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      // Some rows are stored already (a redelivered batch): the same under the chain locks,
      // with those rows left out, so a duplicate never takes a place in a chain.
      return transaction(pool, onConnectionError, async (client) => {
        const heads = await lockChains(client, prepared);
        const { rows: stored } = await client.query<{ event_id: string; occurred_at: Date }>(
          `SELECT event_id, occurred_at FROM audit_events
            WHERE (event_id, occurred_at) IN (SELECT * FROM unnest($1::text[], $2::timestamptz[]))`,
          [prepared.map((p) => p.eventId), prepared.map((p) => p.occurredAt)],
        );
        const present = new Set(stored.map((s) => `${s.event_id}\u0000${s.occurred_at.getTime()}`));
        const fresh = prepared.filter((p) => !present.has(`${p.eventId}\u0000${p.occurredAtMs}`));
        if (fresh.length === 0) return 0;
        try {
          await insertChained(client, fresh, heads);
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          throw new AuditWriteConflictError('rows of the batch were stored by another writer meanwhile');
        }
        return fresh.length;
      });
    },

    /** Newest first; one more row than `limit` tells the caller there is a next page. */
    async search(filter: AuditSearchFilter): Promise<AuditSearchRow[]> {
      const where: string[] = [];
      const params: unknown[] = [];
      const param = (value: unknown) => {
        params.push(value);
        return `$${params.length}`;
      };
      if (filter.username !== undefined) where.push(`username = ${param(filter.username)}`);
      if (filter.appId !== undefined) where.push(`app_id = ${param(filter.appId)}`);
      if (filter.type !== undefined) {
        if (filter.type.endsWith('*')) {
          const prefix = filter.type.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`);
          where.push(`type LIKE ${param(`${prefix}%`)}`);
        } else where.push(`type = ${param(filter.type)}`);
      }
      if (filter.from) where.push(`occurred_at >= ${param(filter.from.toISOString())}`);
      if (filter.to) where.push(`occurred_at < ${param(filter.to.toISOString())}`);
      if (filter.after) {
        const at = param(filter.after.occurredAt);
        // The plain bound lets Postgres prune partitions; the row comparison breaks ties.
        where.push(
          `occurred_at <= ${at}::timestamptz`,
          `(occurred_at, event_id) < (${at}::timestamptz, ${param(filter.after.eventId)})`,
        );
      }
      const { rows } = await pool.query<{
        event_id: string;
        occurred_at: Date;
        occurred_at_exact: string;
        received_at: Date;
        type: string;
        source: string;
        app_id: string | null;
        username: string | null;
        session: string | null;
        ip: string | null;
        outcome: string | null;
        decision: string | null;
        reason: string | null;
        kafka_topic: string;
        kafka_partition: number;
        kafka_offset: string;
        event: unknown;
      }>(
        `SELECT event_id, occurred_at,
                to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_at_exact,
                received_at, type, source, app_id, username, session, host(ip) AS ip, outcome, decision, reason,
                kafka_topic, kafka_partition, kafka_offset, event
           FROM audit_events
          ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
          ORDER BY occurred_at DESC, event_id DESC
          LIMIT ${param(filter.limit + 1)}`,
        params,
      );
      return rows.map((r) => ({
        eventId: r.event_id,
        occurredAt: r.occurred_at,
        occurredAtExact: r.occurred_at_exact,
        receivedAt: r.received_at,
        type: r.type,
        source: r.source,
        appId: r.app_id,
        username: r.username,
        session: r.session,
        ip: r.ip,
        outcome: r.outcome,
        decision: r.decision,
        reason: r.reason,
        kafkaTopic: r.kafka_topic,
        kafkaPartition: r.kafka_partition,
        kafkaOffset: r.kafka_offset,
        event: r.event,
      }));
    },

    /**
     * Partition upkeep: creates the daily partitions from yesterday to `daysAhead` ahead,
     * and drops the ones older than `retentionDays` (with their chains). Safe to run from
     * several replicas at once (the functions take an advisory lock).
     */
    async maintainPartitions(options: {
      daysAhead: number;
      retentionDays: number;
    }): Promise<{ created: number; dropped: string[] }> {
      const created = await pool.query<{ n: number }>('SELECT ensure_audit_partitions(1, $1) AS n', [
        options.daysAhead,
      ]);
      const dropped = await pool.query<{ name: string }>('SELECT drop_audit_partitions($1) AS name', [
        options.retentionDays,
      ]);
      return { created: created.rows[0]?.n ?? 0, dropped: dropped.rows.map((r) => r.name) };
    },
  };
}
export type AuditRepository = ReturnType<typeof createAuditRepository>;
