import { createHash } from 'node:crypto';
import { expandedIpAddressText, parseIpAddress } from '@twofold/contracts';
import { inTransaction, type Pool, type PoolClient } from './pool.js';

// The audit trail's tamper evidence. Rows form hash chains, one per (Kafka topic, Kafka
// partition, UTC day of the event): each row stores its position `seq`, the previous row's
// hash and its own hash = SHA-256(prev_hash ‖ canonical content). The content is rebuilt
// from the stored columns, so editing a column, deleting a row or moving one breaks the
// chain at that row. A chain per day lets retention drop whole days (partitions) without
// leaving a chain with a hole in it.

/** The hash that precedes the first row of every chain. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** Version tag of the canonical content; a new layout gets a new tag. */
const CONTENT_VERSION = 'twofold.audit.v1';

/** Nesting deeper than this is not stored as jsonb (Postgres and the canonical form recurse). */
export const MAX_JSON_DEPTH = 64;

/** What the chain covers of one stored row, in the form both the writer and `verify` rebuild. */
export interface ChainedContent {
  seq: string;
  eventId: string;
  /** Times as `Date.prototype.toISOString()` gives them (milliseconds, UTC): how they are stored. */
  occurredAt: string;
  receivedAt: string;
  type: string;
  source: string;
  appId: string | null;
  username: string | null;
  session: string | null;
  /** The address as canonicalIp() spells it. */
  ip: string | null;
  outcome: string | null;
  decision: string | null;
  reason: string | null;
  kafkaTopic: string;
  kafkaPartition: number;
  kafkaOffset: string;
  /** The event as canonical JSON text (see canonicalJson). */
  eventJson: string;
}

/** Text Postgres can store: no NUL, no lone surrogate (jsonb and text refuse both). */
export function storableText(value: string): string {
  const text = value as unknown as WellFormedString;
  const wellFormed = text.isWellFormed() ? value : text.toWellFormed();
  return wellFormed.includes('\u0000') ? wellFormed.replaceAll('\u0000', '\uFFFD') : wellFormed;
}

// ES2024 string methods (Node 20 has them; the ES2023 lib does not declare them).
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

export function storableTextOrNull(value: string | null): string | null {
  return value === null ? null : storableText(value);
}

export class UnstorableJsonError extends Error {
  readonly code = 'AUDIT_UNSTORABLE_JSON';
  constructor(detail: string) {
    super(detail);
    this.name = 'UnstorableJsonError';
  }
}

/** Throws UnstorableJsonError when a value nests deeper than MAX_JSON_DEPTH. */
export function assertStorableJson(value: unknown, depth = 0): void {
  if (value === null || typeof value !== 'object') return;
  if (depth >= MAX_JSON_DEPTH) throw new UnstorableJsonError(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
  for (const inner of Array.isArray(value) ? value : Object.values(value))
    assertStorableJson(inner, depth + 1);
}

/**
 * JSON with object keys sorted (recursively) and strings made storable: one text that
 * is both what goes into the jsonb column and what the hash covers. Reading the jsonb
 * back and canonicalizing again yields the same text. Throws UnstorableJsonError when
 * nesting exceeds MAX_JSON_DEPTH.
 */
export function canonicalJson(value: unknown): string {
  // A clone with sorted keys through the native serializer (key order is then the
  // engine's: integer-like keys first, the rest sorted). Its output escapes NUL and lone
  // surrogates (\u0000, \udXXX), which jsonb refuses; only then rewrite every string.
  const text = JSON.stringify(sortedClone(value, 0)) ?? 'null';
  return UNSTORABLE_ESCAPE.test(text)
    ? (JSON.stringify(sortedClone(storableClone(value), 0)) ?? 'null')
    : text;
}

/** A copy with every string (keys too) made storable. */
function storableClone(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map(storableClone);
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value as Record<string, unknown>))
    out[storableText(key)] = storableClone(inner);
  return out;
}

const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f])/i;

function sortedClone(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_JSON_DEPTH) throw new UnstorableJsonError(`JSON nested deeper than ${MAX_JSON_DEPTH}`);
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = sortedClone(value[i], depth + 1);
    return out;
  }
  if (value instanceof Date) return value;
  const source = value as Record<string, unknown>;
  const keys = Object.keys(source).sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) out[key] = sortedClone(source[key], depth + 1);
  return out;
}

/**
 * An IP address (optionally with a /prefix) in one spelling whatever way it was written:
 * IPv4 dotted, IPv6 as eight 4-digit groups (expandedIpAddressText; IPv4-mapped stays IPv6).
 * Postgres prints inet its own way; both sides of the chain compare this form, so it must
 * never change for rows already chained. Null when the text is not an address Postgres's inet
 * accepts (zone ids such as `fe80::1%eth0`, garbage).
 */
export function canonicalIp(text: string | null): string | null {
  if (text === null) return null;
  const slash = text.indexOf('/');
  const host = slash === -1 ? text : text.slice(0, slash);
  const bits = slash === -1 ? null : text.slice(slash + 1);
  const ip = parseIpAddress(host);
  if (!ip) return null;
  const max = ip.bytes.length * 8;
  if (bits !== null && (!/^\d{1,3}$/.test(bits) || Number(bits) > max)) return null;
  const address = expandedIpAddressText(ip);
  return bits === null || Number(bits) === max ? address : `${address}/${Number(bits)}`;
}

/** The UTC day of a time, `YYYY-MM-DD`: with topic and partition it names a chain. */
export function chainDay(time: Date): string {
  return time.toISOString().slice(0, 10);
}

/** The content's columns as a JSON array text, open at the end for the event. */
function contentHead(seq: string, row: Omit<ChainedContent, 'seq'>): string {
  const head = JSON.stringify([
    CONTENT_VERSION,
    seq,
    row.eventId,
    row.occurredAt,
    row.receivedAt,
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
  ]);
  return `${head.slice(0, -1)},`;
}

/** The content a row's hash covers, as one UTF-8 text. */
export function chainedContentText(row: ChainedContent): string {
  return `${contentHead(row.seq, row)}${row.eventJson}]`;
}

/** row_hash = SHA-256(prev_hash ‖ content). */
export function chainRowHash(prevHash: Buffer, row: ChainedContent): Buffer {
  return chainLinkHash(prevHash, row.seq, row);
}

/** chainRowHash with the position given apart (the writer places rows as it hashes them). */
export function chainLinkHash(prevHash: Buffer, seq: string, row: Omit<ChainedContent, 'seq'>): Buffer {
  return createHash('sha256')
    .update(prevHash)
    .update(contentHead(seq, row), 'utf8')
    .update(row.eventJson, 'utf8')
    .update(']')
    .digest();
}

// ---------------------------------------------------------------------------------------
// Verification

export type ChainProblemKind =
  /** The row's content no longer matches its stored hash: a column was edited, or the row moved. */
  | 'edited'
  /** The row's prev_hash is not the hash of the row before it: a row was replaced or reordered. */
  | 'relinked'
  /** Rows are missing before this one (seq jumps). */
  | 'missing'
  /** Two rows claim the same position. */
  | 'duplicate'
  /** The chain's recorded head is ahead of its last stored row: rows at the end are missing. */
  | 'truncated'
  /** Rows belong to no recorded chain, or the chain's head hash disagrees with its last row. */
  | 'unanchored'
  /** Rows stored after chaining began that carry no chain at all (inserted around the sink). */
  | 'unchained';

/** The first broken row of one chain, named so a person can find it. */
export interface ChainProblem {
  kind: ChainProblemKind;
  chainId: number | null;
  kafkaTopic: string | null;
  kafkaPartition: number | null;
  day: string | null;
  seq: string | null;
  eventId: string | null;
  occurredAt: string | null;
  detail: string;
}

export interface ChainVerifyReport {
  ok: boolean;
  chains: number;
  rows: number;
  /** Rows written before the chain existed (not covered, not a problem). */
  legacyRows: number;
  /** The first problem of each broken chain, in chain order. */
  problems: ChainProblem[];
}

export interface ChainVerifyOptions {
  /** Only chains of these days (UTC, inclusive). */
  fromDay?: string;
  toDay?: string;
  /** Only chains of this Kafka topic. */
  topic?: string;
  /** Rows read per query. */
  pageSize?: number;
  onChain?: (done: number, total: number) => void;
}

interface StoredChainRow {
  seq: string;
  event_id: string;
  occurred_at: Date;
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
  prev_hash: Buffer;
  row_hash: Buffer;
}

interface ChainHead {
  chain_id: number;
  kafka_topic: string;
  kafka_partition: number;
  day: string;
  head_seq: string;
  head_hash: Buffer;
}

/**
 * Walks every chain in order and names the first broken row of each: an edited row, a
 * deleted one (seq gap, or a head ahead of the last row), a reordered or replaced one
 * (prev_hash mismatch), rows outside any chain. Needs only SELECT (the analyst role can
 * run it).
 */
export async function verifyAuditChains(
  pool: Pool,
  options: ChainVerifyOptions = {},
): Promise<ChainVerifyReport> {
  // One snapshot for the whole walk: rows the sink commits meanwhile (past the heads read
  // before them) or days retention drops meanwhile would otherwise look like tampering.
  return inTransaction(
    pool,
    async (client) => {
      // Taken before the snapshot (the first SELECT): dropping a partition needs ACCESS
      // EXCLUSIVE on the parent, so none disappears between the snapshot and its reads.
      await client.query('LOCK TABLE ONLY audit_events IN ACCESS SHARE MODE');
      return verifyInSnapshot(client, options);
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}

async function verifyInSnapshot(client: PoolClient, options: ChainVerifyOptions): Promise<ChainVerifyReport> {
  const pageSize = options.pageSize ?? 5_000;
  const heads = await client.query<ChainHead>(
    `SELECT chain_id, kafka_topic, kafka_partition, to_char(day, 'YYYY-MM-DD') AS day, head_seq, head_hash
       FROM audit_chains
      WHERE ($1::date IS NULL OR day >= $1::date) AND ($2::date IS NULL OR day <= $2::date)
        AND ($3::text IS NULL OR kafka_topic = $3)
      ORDER BY day, kafka_topic, kafka_partition`,
    [options.fromDay ?? null, options.toDay ?? null, options.topic ?? null],
  );
  const problems: ChainProblem[] = [];
  let rows = 0;
  for (const [index, head] of heads.rows.entries()) {
    const result = await verifyOneChain(client, head, pageSize);
    rows += result.rows;
    if (result.problem) problems.push(result.problem);
    options.onChain?.(index + 1, heads.rows.length);
  }

  // Rows whose chain id names no recorded chain, and rows with no chain at all.
  const filters = [options.fromDay ?? null, options.toDay ?? null, options.topic ?? null];
  // Days are UTC days (as chains are), whatever the session's TimeZone.
  const inScope = `($1::date IS NULL OR e.occurred_at >= $1::date::timestamp AT TIME ZONE 'UTC')
        AND ($2::date IS NULL OR e.occurred_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC')
        AND ($3::text IS NULL OR e.kafka_topic = $3)`;
  const strays = await client.query<{ chain_id: number | null; legacy: boolean; n: string }>(
    `SELECT e.chain_id, e.chain_id IS NULL AND e.received_at < s.chained_since AS legacy, count(*) AS n
       FROM audit_events e CROSS JOIN audit_chain_settings s
      WHERE (e.chain_id IS NULL OR NOT EXISTS (SELECT 1 FROM audit_chains c WHERE c.chain_id = e.chain_id))
        AND ${inScope}
      GROUP BY 1, 2 ORDER BY 2, 1`,
    filters,
  );
  let legacyRows = 0;
  for (const stray of strays.rows) {
    if (stray.legacy) {
      legacyRows += Number(stray.n);
      continue;
    }
    const first = await client.query<{
      event_id: string;
      seq: string | null;
      kafka_topic: string;
      kafka_partition: number;
      occurred_at: Date;
    }>(
      `SELECT e.event_id, e.seq, e.kafka_topic, e.kafka_partition, e.occurred_at
         FROM audit_events e CROSS JOIN audit_chain_settings s
        WHERE ${stray.chain_id === null ? 'e.chain_id IS NULL AND e.received_at >= s.chained_since' : 'e.chain_id = $4'}
          AND ${inScope}
        ORDER BY e.seq NULLS FIRST, e.received_at, e.event_id LIMIT 1`,
      stray.chain_id === null ? filters : [...filters, stray.chain_id],
    );
    const row = first.rows[0];
    if (!row) continue;
    problems.push({
      kind: stray.chain_id === null ? 'unchained' : 'unanchored',
      chainId: stray.chain_id,
      kafkaTopic: row.kafka_topic,
      kafkaPartition: row.kafka_partition,
      day: chainDay(row.occurred_at),
      seq: row.seq,
      eventId: row.event_id,
      occurredAt: row.occurred_at.toISOString(),
      detail:
        stray.chain_id === null
          ? `${stray.n} row(s) carry no chain although they were stored after chaining began; the first is event ${row.event_id}`
          : `${stray.n} row(s) claim chain ${stray.chain_id}, which is not recorded; the first is event ${row.event_id}`,
    });
  }
  return { ok: problems.length === 0, chains: heads.rows.length, rows, legacyRows, problems };
}

async function verifyOneChain(
  client: PoolClient,
  head: ChainHead,
  pageSize: number,
): Promise<{ rows: number; problem?: ChainProblem }> {
  const at = (
    kind: ChainProblemKind,
    row: StoredChainRow | null,
    detail: string,
    seq?: string,
  ): ChainProblem => ({
    kind,
    chainId: head.chain_id,
    kafkaTopic: head.kafka_topic,
    kafkaPartition: head.kafka_partition,
    day: head.day,
    seq: row?.seq ?? seq ?? null,
    eventId: row?.event_id ?? null,
    occurredAt: row?.occurred_at.toISOString() ?? null,
    detail,
  });
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1n;
  let rows = 0;
  let after = '0';
  for (;;) {
    const page = await client.query<StoredChainRow>(
      `SELECT seq, event_id, occurred_at, received_at, type, source, app_id, username, session, ip::text AS ip,
              outcome, decision, reason, kafka_topic, kafka_partition, kafka_offset, event, prev_hash, row_hash
         FROM audit_events WHERE chain_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [head.chain_id, after, pageSize],
    );
    for (const row of page.rows) {
      rows++;
      const seq = BigInt(row.seq);
      if (seq < expectedSeq) {
        return {
          rows,
          problem: at(
            'duplicate',
            row,
            `two rows claim position ${row.seq}; this one is event ${row.event_id}`,
          ),
        };
      }
      if (seq > expectedSeq) {
        const gap = seq - 1n === expectedSeq ? `row ${expectedSeq}` : `rows ${expectedSeq}–${seq - 1n}`;
        return {
          rows,
          problem: at(
            'missing',
            row,
            `${gap} of the chain are missing before event ${row.event_id} (deleted?)`,
          ),
        };
      }
      if (!row.prev_hash.equals(prevHash)) {
        return {
          rows,
          problem: at(
            'relinked',
            row,
            `event ${row.event_id} does not follow the row before it (prev_hash mismatch: reordered or replaced)`,
          ),
        };
      }
      let recomputed: Buffer;
      try {
        recomputed = chainRowHash(prevHash, {
          seq: row.seq,
          eventId: row.event_id,
          occurredAt: row.occurred_at.toISOString(),
          receivedAt: row.received_at.toISOString(),
          type: row.type,
          source: row.source,
          appId: row.app_id,
          username: row.username,
          session: row.session,
          ip: canonicalIp(row.ip),
          outcome: row.outcome,
          decision: row.decision,
          reason: row.reason,
          kafkaTopic: row.kafka_topic,
          kafkaPartition: row.kafka_partition,
          kafkaOffset: row.kafka_offset,
          eventJson: canonicalJson(row.event),
        });
      } catch {
        recomputed = Buffer.alloc(0);
      }
      if (!recomputed.equals(row.row_hash)) {
        return {
          rows,
          problem: at(
            'edited',
            row,
            `event ${row.event_id} at position ${row.seq} does not match its hash (edited or moved)`,
          ),
        };
      }
      prevHash = row.row_hash;
      expectedSeq = seq + 1n;
    }
    if (page.rows.length < pageSize) break;
    after = page.rows[page.rows.length - 1]!.seq;
  }
  const headSeq = BigInt(head.head_seq);
  if (headSeq >= expectedSeq) {
    const gap = headSeq === expectedSeq ? `row ${headSeq}` : `rows ${expectedSeq}–${headSeq}`;
    return {
      rows,
      problem: at(
        'truncated',
        null,
        `${gap} at the end of the chain are missing (the head says ${headSeq} rows)`,
        expectedSeq.toString(),
      ),
    };
  }
  if (headSeq === expectedSeq - 1n && !head.head_hash.equals(prevHash)) {
    return {
      rows,
      problem: at('unanchored', null, 'the last row does not match the chain head hash', head.head_seq),
    };
  }
  if (headSeq < expectedSeq - 1n) {
    return {
      rows,
      problem: at(
        'unanchored',
        null,
        `rows beyond the chain head (${headSeq}) exist: appended around the sink`,
        (headSeq + 1n).toString(),
      ),
    };
  }
  return { rows };
}
