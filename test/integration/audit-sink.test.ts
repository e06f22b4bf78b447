// Issue 6 through real Kafka, Postgres and Redis: every event of every topic lands in
// audit_events once, redeliveries add nothing (not even a link in the hash chain), bad
// messages are recorded as DLQ rows, and the partition upkeep job creates and drops
// partitions.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import { createAuditRepository, createPool, verifyAuditChains, type Pool } from '@twofold/store';
import { createServiceMetrics } from '@twofold/telemetry';
import { createAuditPartitionsJob } from '../../services/audit-sink/src/audit-partitions.worker.js';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { startServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;
const sinks: ReturnType<typeof buildAuditSink>[] = [];

function startSink(groupSuffix: string, metrics = world.metrics) {
  const sink = buildAuditSink({
    kafka: world.kafka,
    producer: world.producer,
    pool,
    audit: createAuditRepository(pool),
    logger: world.logger,
    metrics,
    groupId: `${world.config.kafka.groupPrefix}${groupSuffix}`,
    sessionTimeoutMs: 6_000,
  });
  sinks.push(sink);
  return sink;
}

const session = () => hashSessionToken(randomUUID());

/** n events cycling through every type of every topic, each with its topic role. */
function eventsOfEveryType(n: number): { role: TopicRole; event: AnyTwofoldEvent }[] {
  const makers: (() => { role: TopicRole; event: AnyTwofoldEvent })[] = [
    () => ({
      role: 'login',
      event: createEvent('twofold.login.succeeded', 'app/jira', `user-${randomUUID().slice(0, 6)}`, {
        appId: 'jira',
        session: session(),
        method: 'password',
        ip: '192.0.2.10',
        groups: ['eng'],
      }),
    }),
    () => ({
      role: 'login',
      event: createEvent('twofold.login.failed', 'app/confluence', 'mallory', {
        appId: 'confluence',
        ip: '2001:db8::7',
        reason: 'bad_password',
      }),
    }),
    () => ({
      role: 'login',
      event: createEvent('twofold.logout', 'app/jira', 'alice', { appId: 'jira', session: session() }),
    }),
    () => ({
      role: 'secondFactor',
      event: createEvent('twofold.2fa.decided', 'service/verifier', 'alice', {
        loginEventId: randomUUID(),
        appId: 'jira',
        session: session(),
        decision: 'skip',
        reason: 'sso',
      }),
    }),
    () => ({
      role: 'secondFactor',
      event: createEvent('twofold.2fa.verified', 'service/api', 'alice', {
        appId: 'jira',
        session: session(),
        method: 'totp',
      }),
    }),
    () => ({
      role: 'secondFactor',
      event: createEvent('twofold.2fa.failed', 'service/api', 'alice', {
        appId: 'jira',
        session: session(),
        ip: '192.0.2.11',
        reason: 'bad_code',
      }),
    }),
    () => ({
      role: 'secondFactor',
      event: createEvent('twofold.enrollment.activated', 'service/api', 'alice', { method: 'generated' }),
    }),
    () => ({
      role: 'secondFactor',
      event: createEvent('twofold.enrollment.reset', 'service/api', 'alice', { by: 'admin' }),
    }),
    () => ({
      role: 'security',
      event: createEvent('twofold.lockout.imposed', 'service/lockout-detector', 'alice', {
        scope: 'user',
        key: 'alice',
        until: null,
        failures: 10,
        rule: 'user',
      }),
    }),
    () => ({
      role: 'security',
      event: createEvent('twofold.lockout.lifted', 'service/api', 'alice', {
        scope: 'user',
        key: 'alice',
        by: 'admin',
      }),
    }),
    () => ({
      role: 'security',
      event: createEvent('twofold.attack.detected', 'service/lockout-detector', '203.0.113.9', {
        kind: 'credential_stuffing',
        key: '203.0.113.9',
        evidence: { users: 40 },
      }),
    }),
    () => ({
      role: 'session',
      event: createEvent('twofold.session.validated', 'service/session-broadcaster', 'alice', {
        session: session(),
        username: 'alice',
        appId: 'jira',
        verifiedAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      }),
    }),
    () => ({
      role: 'session',
      event: createEvent('twofold.session.revoked', 'service/session-broadcaster', 'alice', {
        session: session(),
        reason: 'logout',
      }),
    }),
    () => ({
      role: 'admin',
      event: createEvent('twofold.admin.policy_updated', 'service/api', 'alice', {
        actor: 'admin',
        defaultMode: 'require',
      }),
    }),
    () => ({
      role: 'admin',
      event: createEvent('twofold.admin.enrollment_reset', 'service/api', 'bob', {
        actor: 'admin',
        username: 'bob',
      }),
    }),
  ];
  return Array.from({ length: n }, (_, i) => makers[i % makers.length]!());
}

async function publish(items: readonly { role: TopicRole; event: AnyTwofoldEvent }[]): Promise<void> {
  const byRole = new Map<TopicRole, AnyTwofoldEvent[]>();
  for (const { role, event } of items) byRole.set(role, [...(byRole.get(role) ?? []), event]);
  // Several requests, as apps and services would send them.
  for (let i = 0; i < items.length; i += 200) {
    const slice = items.slice(i, i + 200);
    const groups = new Map<TopicRole, AnyTwofoldEvent[]>();
    for (const { role, event } of slice) groups.set(role, [...(groups.get(role) ?? []), event]);
    await world.producer.publishMany([...groups].map(([role, events]) => ({ role, events })));
  }
}

async function stored(ids: readonly string[]): Promise<{ rows: number; distinct: number }> {
  const { rows } = await pool.query<{ n: string; d: string }>(
    'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events WHERE event_id = ANY($1)',
    [ids],
  );
  return { rows: Number(rows[0]!.n), distinct: Number(rows[0]!.d) };
}

async function chainLength(): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT coalesce(sum(head_seq), 0) AS n FROM audit_chains',
  );
  return Number(rows[0]!.n);
}

async function rowCounter(registry = world.metrics.registry): Promise<Record<string, number>> {
  const metric = registry.getSingleMetric('twofold_audit_rows_total');
  const values = metric ? (await metric.get()).values : [];
  return Object.fromEntries(values.map((v) => [String(v.labels['outcome']), v.value]));
}

const allTopics = () => Object.values(world.topics);

beforeAll(async () => {
  world = await isolated('audit-sink', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 8 });
  await startSink('audit-sink').start();
});

afterAll(async () => {
  for (const sink of sinks) await sink.stop();
  await pool?.end();
  await world?.cleanup();
});

describe('audit sink', () => {
  const items = eventsOfEveryType(600);
  const ids = items.map((i) => i.event.id);

  it('stores N events of every topic as exactly N rows, in intact hash chains', async () => {
    await publish(items);
    await eventually(
      async () => ((await stored(ids)).rows >= ids.length ? true : undefined),
      60_000,
      'all rows',
    );
    expect(await stored(ids)).toEqual({ rows: 600, distinct: 600 });

    const report = await verifyAuditChains(pool);
    expect(report.problems).toEqual([]);
    expect(report.rows).toBe(600);
    expect(await chainLength()).toBe(600);
    expect((await rowCounter())['inserted']).toBe(600);

    // Columns analysts use without digging in the JSON.
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT DISTINCT ON (type) type, source, app_id, username, session IS NOT NULL AS has_session, host(ip) AS ip,
              outcome, decision, reason, kafka_topic, event->>'id' = event_id AS same_id
         FROM audit_events ORDER BY type`,
    );
    const byType = Object.fromEntries(rows.map((r) => [r['type'], r]));
    expect(Object.keys(byType)).toHaveLength(15);
    expect(byType['twofold.login.failed']).toMatchObject({
      app_id: 'confluence',
      username: 'mallory',
      ip: '2001:db8::7',
      outcome: 'failure',
      reason: 'bad_password',
      kafka_topic: world.topics.login,
    });
    expect(byType['twofold.2fa.decided']).toMatchObject({
      outcome: 'skip',
      decision: 'skip',
      reason: 'sso',
      has_session: true,
      kafka_topic: world.topics.secondFactor,
    });
    expect(byType['twofold.attack.detected']).toMatchObject({
      username: null,
      ip: '203.0.113.9',
      outcome: 'attack',
      reason: 'credential_stuffing',
    });
    expect(byType['twofold.admin.enrollment_reset']).toMatchObject({
      outcome: 'enrollment_reset',
      username: 'bob',
      kafka_topic: world.topics.admin,
    });
    expect(byType['twofold.admin.policy_updated']).toMatchObject({
      outcome: 'policy_updated',
      source: 'service/api',
    });
    expect(rows.every((r) => r['same_id'] === true)).toBe(true);
  });

  it('stores nothing more, and extends no chain, when the same events are published again', async () => {
    const group = `${world.config.kafka.groupPrefix}audit-sink`;
    await publish(items);
    await eventually(
      async () => ((await groupLag(world.kafka, group, allTopics())) === 0 ? true : undefined),
      60_000,
      'the sink to consume the second copy',
    );
    expect(await stored(ids)).toEqual({ rows: 600, distinct: 600 });
    expect(await chainLength()).toBe(600);
    expect((await verifyAuditChains(pool)).ok).toBe(true);
    expect(await rowCounter()).toMatchObject({ inserted: 600, duplicate: 600 });
  });

  it('stores nothing more when a second consumer group redelivers every message from the start', async () => {
    const metrics = createServiceMetrics('audit-sink-replay');
    const replay = startSink('audit-sink-replay', metrics);
    await replay.start();
    const group = `${world.config.kafka.groupPrefix}audit-sink-replay`;
    await eventually(
      async () => {
        const counts = await rowCounter(metrics.registry);
        return (counts['duplicate'] ?? 0) >= 1200 && (await groupLag(world.kafka, group, allTopics())) === 0
          ? true
          : undefined;
      },
      60_000,
      'the replay to reach the end',
    );
    await replay.stop();
    expect(await stored(ids)).toEqual({ rows: 600, distinct: 600 });
    expect(await chainLength()).toBe(600);
    expect(await rowCounter(metrics.registry)).toEqual({ inserted: 0, duplicate: 1200 });
    expect((await verifyAuditChains(pool)).ok).toBe(true);
  });

  it('records a malformed message as a DLQ row, and an event too deep for jsonb as well, and goes on', async () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 80; i++) deep = { deeper: deep };
    const tooDeep = createEvent('twofold.login.failed', 'app/jira', 'deep', {
      appId: 'jira',
      ip: '192.0.2.1',
      reason: 'bad_password',
      extra: deep,
    } as never);
    const odd = createEvent('twofold.login.failed', 'app/jira', 'deep', {
      appId: 'jira',
      ip: 'fe80::1%eth0',
      reason: 'bad_password',
      userAgent: 'nul\u0000 and a lone \uD800 surrogate',
    });
    const after = createEvent('twofold.login.failed', 'app/jira', 'deep', {
      appId: 'jira',
      ip: '192.0.2.1',
      reason: 'unknown_user',
    });
    // One key: the good events queue behind the bad ones on one partition.
    await world.producer.sendRaw(world.topics.login, [
      { key: 'deep', value: '{"not": json' },
      { key: 'deep', value: JSON.stringify(tooDeep) },
      { key: 'deep', value: JSON.stringify(odd) },
      { key: 'deep', value: JSON.stringify(after) },
    ]);
    await eventually(
      async () => ((await stored([after.id])).rows === 1 ? true : undefined),
      30_000,
      'the event after the bad ones',
    );
    const dlqRows = await eventually(
      async () => {
        const { rows } = await pool.query<{
          reason: string;
          source: string;
          event: { topic: string; valueBase64: string };
        }>(`SELECT reason, source, event FROM audit_events WHERE type = 'twofold.dlq' ORDER BY kafka_offset`);
        return rows.length >= 2 ? rows : undefined;
      },
      30_000,
      'two DLQ rows',
    );
    expect(dlqRows.map((r) => r.reason)).toEqual([
      expect.stringMatching(/^not JSON/),
      'not storable in the audit trail: JSON nested deeper than 64',
    ]);
    expect(dlqRows[0]!.source).toBe(`consumer/${world.config.kafka.groupPrefix}audit-sink`);
    expect(dlqRows[0]!.event.topic).toBe(world.topics.login);
    expect(Buffer.from(dlqRows[0]!.event.valueBase64, 'base64').toString()).toBe('{"not": json');
    expect(await stored([tooDeep.id])).toEqual({ rows: 0, distinct: 0 });

    // Text Postgres cannot hold is made storable; an address inet refuses stays in the JSON only.
    const { rows } = await pool.query<{ ip: string | null; ua: string }>(
      `SELECT ip::text, event->'data'->>'userAgent' AS ua FROM audit_events WHERE event_id = $1`,
      [odd.id],
    );
    expect(rows[0]).toEqual({ ip: null, ua: 'nul\uFFFD and a lone \uFFFD surrogate' });
    expect((await verifyAuditChains(pool)).ok).toBe(true);
  });

  it('sends an event Postgres refuses to the DLQ with its reason, and stores the rest of its batch', async () => {
    // A row Postgres can never take (here a check constraint refuses it) must not stall its
    // partition: retried whole, its batch failed forever and nothing after it was stored.
    await pool.query(
      `ALTER TABLE audit_events ADD CONSTRAINT t_refused CHECK (username IS DISTINCT FROM 'refused-by-postgres')`,
    );
    try {
      const [before, refused, after] = ['refused-before', 'refused-by-postgres', 'refused-after'].map(
        (user) =>
          createEvent('twofold.login.failed', 'app/jira', user, {
            appId: 'jira',
            ip: '192.0.2.1',
            reason: 'bad_password',
          }),
      );
      // One key: the three share a partition and a batch.
      await world.producer.sendRaw(
        world.topics.login,
        [before, refused, after].map((event) => ({ key: 'refused', value: JSON.stringify(event) })),
      );
      await eventually(
        async () => ((await stored([before!.id, after!.id])).rows === 2 ? true : undefined),
        30_000,
        'the events beside the refused one',
      );
      const dlq = await eventually(
        async () => {
          const { rows } = await pool.query<{ reason: string; event: { valueBase64: string } }>(
            `SELECT reason, event FROM audit_events WHERE type = 'twofold.dlq' AND reason LIKE 'Postgres refused it:%'`,
          );
          return rows.length > 0 ? rows : undefined;
        },
        30_000,
        'the refused event as a DLQ row',
      );
      expect(dlq).toHaveLength(1);
      expect(dlq[0]!.reason).toMatch(/t_refused.*\(SQLSTATE 23514\)/);
      expect(JSON.parse(Buffer.from(dlq[0]!.event.valueBase64, 'base64').toString()).id).toBe(refused!.id);
      expect(await stored([refused!.id])).toEqual({ rows: 0, distinct: 0 });
      expect((await verifyAuditChains(pool)).ok).toBe(true);
    } finally {
      await pool.query('ALTER TABLE audit_events DROP CONSTRAINT t_refused');
    }
  });

  it('creates partitions ahead, moves early rows out of DEFAULT, and drops partitions past the retention', async () => {
    const today = new Date();
    const dayOffset = (days: number) =>
      new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + days, 12));
    const partition = (days: number) =>
      `audit_events_${dayOffset(days).toISOString().slice(0, 10).replaceAll('-', '')}`;
    // Old partitions, one holding a row, and an event from 30 days ahead (no partition yet: DEFAULT).
    await pool.query('SELECT ensure_audit_partitions(45, 0)');
    const old = createEvent(
      'twofold.login.failed',
      'app/jira',
      'old',
      { appId: 'jira', ip: '192.0.2.1', reason: 'bad_password' },
      { time: dayOffset(-40) },
    );
    const early = createEvent(
      'twofold.login.failed',
      'app/jira',
      'early',
      { appId: 'jira', ip: '192.0.2.1', reason: 'bad_password' },
      { time: dayOffset(30) },
    );
    await world.producer.publish('login', [old, early]);
    await eventually(
      async () => ((await stored([old.id, early.id])).rows === 2 ? true : undefined),
      30_000,
      'old and early rows',
    );
    const where = async (id: string) =>
      (
        await pool.query<{ t: string }>(
          'SELECT tableoid::regclass::text AS t FROM audit_events WHERE event_id = $1',
          [id],
        )
      ).rows[0]?.t;
    expect(await where(early.id)).toBe('audit_events_default');
    expect(await where(old.id)).toBe(partition(-40));

    const job = createAuditPartitionsJob({
      audit: createAuditRepository(pool),
      logger: world.logger,
      registry: world.metrics.registry,
      redisUrl: world.config.redis.url,
      keyPrefix: world.config.redis.keyPrefix,
      retentionDays: 30,
      daysAhead: 31,
      everyMs: 3_600_000,
    });
    const ran = job.nextRun();
    await job.start();
    try {
      const result = await Promise.race([
        ran,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('the scheduler did not run the job')), 30_000),
        ),
      ]);
      expect(result.dropped).toContain(partition(-40));
      expect(result.dropped).toContain(partition(-31));
      expect(result.dropped).not.toContain(partition(-30));
      expect(result.created).toBeGreaterThanOrEqual(17);
    } finally {
      await job.stop();
    }
    const { rows } = await pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass`,
    );
    const names = rows.map((r) => r.name);
    expect(names).toContain(partition(31));
    expect(names).not.toContain(partition(-31));
    expect(await where(early.id)).toBe(partition(30));
    expect(await stored([old.id])).toEqual({ rows: 0, distinct: 0 });
    // Retention takes whole chains with it; what is left still verifies.
    const report = await verifyAuditChains(pool);
    expect(report.problems).toEqual([]);
  });

  it('runs as a service (main.ts): stores events, keeps partitions per its settings, stops cleanly', async () => {
    const services = await startServices(world, ['audit-sink'], {
      AUDIT_PARTITIONS_AHEAD_DAYS: '45',
      AUDIT_RETENTION_DAYS: '30',
    });
    try {
      const day45 = new Date(Date.now() + 45 * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '');
      await eventually(
        async () =>
          (await pool.query('SELECT to_regclass($1) AS t', [`audit_events_${day45}`])).rows[0]?.t
            ? true
            : undefined,
        60_000,
        'the partition 45 days ahead',
      );
      const late = createEvent('twofold.logout', 'app/jira', 'late', { appId: 'jira', session: session() });
      await world.producer.publish('login', [late]);
      // Its own consumer group re-reads every topic (duplicates) and stores the new event once.
      await eventually(
        async () => ((await stored([late.id])).rows === 1 ? true : undefined),
        60_000,
        'the new event',
      );
      expect(await stored(ids)).toEqual({ rows: 600, distinct: 600 });
    } finally {
      const codes = await services.stop();
      expect(codes.get('audit-sink')).toBe(0);
    }
    expect((await verifyAuditChains(pool)).problems).toEqual([]);
  });
});
