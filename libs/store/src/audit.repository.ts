import type { Pool } from './pool.js';

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
}

const COLUMNS = [
  'event_id',
  'occurred_at',
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
] as const;

export function createAuditRepository(pool: Pool) {
  return {
    /**
     * Inserts rows in one multi-row statement; rows already stored (same event id and time)
     * are skipped, so a redelivered batch changes nothing. Returns the number inserted.
     */
    async insertMany(rows: readonly AuditRow[]): Promise<number> {
      if (rows.length === 0) return 0;
      const values: unknown[] = [];
      const tuples = rows.map((row, i) => {
        values.push(
          row.eventId,
          row.occurredAt,
          row.type,
          row.source,
          row.appId,
          row.username,
          row.session,
          row.ip,
          row.outcome,
          row.decision,
          row.reason,
          row.kafkaTopic,
          row.kafkaPartition,
          row.kafkaOffset,
          JSON.stringify(row.event),
        );
        const base = i * COLUMNS.length;
        return `(${COLUMNS.map((_, j) => `$${base + j + 1}`).join(', ')})`;
      });
      const result = await pool.query(
        `INSERT INTO audit_events (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')}
         ON CONFLICT (event_id, occurred_at) DO NOTHING`,
        values,
      );
      return result.rowCount ?? 0;
    },
  };
}
export type AuditRepository = ReturnType<typeof createAuditRepository>;
