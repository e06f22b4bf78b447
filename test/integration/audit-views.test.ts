// The analysts' database: a scripted day of logins, failures, lockouts, decisions and
// verifications goes through Kafka and the sink, and every view returns the figures a
// person would count by hand. The analyst role reads everything it is meant to and
// writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditRepository, createPool, verifyAuditChains, type Pool } from '@twofold/store';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { at, auditScenario, numbers } from './audit-scenario.js';

let world: Isolated;
let pool: Pool;
let sink: ReturnType<typeof buildAuditSink>;

// Yesterday (UTC), so its partition exists; H1 and H2 are two consecutive hours.
const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const {
  H1,
  H2,
  IP_A,
  IP_B,
  S1,
  S2,
  S3,
  S4,
  events: scenarioEvents,
} = auditScenario(Date.parse(`${day}T08:00:00.000Z`));

async function view(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return (await pool.query<Record<string, unknown>>(sql, params)).rows.map(numbers);
}

beforeAll(async () => {
  world = await isolated('audit-views', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  sink = buildAuditSink({
    kafka: world.kafka,
    producer: world.producer,
    pool,
    audit: createAuditRepository(pool),
    logger: world.logger,
    metrics: world.metrics,
    groupId: `${world.config.kafka.groupPrefix}audit-sink`,
    sessionTimeoutMs: 6_000,
  });
  await sink.start();
  const items = scenarioEvents;
  for (const role of ['login', 'secondFactor', 'security'] as const) {
    await world.producer.publish(
      role,
      items.filter((i) => i.role === role).map((i) => i.event),
    );
  }
  await eventually(
    async () => {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
      return Number(rows[0]!.n) === items.length ? true : undefined;
    },
    60_000,
    `${items.length} rows`,
  );
  await pool.query(`SET TIME ZONE 'UTC'`);
});

afterAll(async () => {
  await sink?.stop();
  await pool?.end();
  await world?.cleanup();
});

describe('analyst views', () => {
  it('counts failed logins by IP and hour', async () => {
    const rows = await view(
      'SELECT hour, host(ip) AS ip, password_failures, code_failures, failures, users, apps FROM audit_failed_logins_by_ip_hourly ORDER BY hour, ip',
    );
    expect(rows).toEqual([
      {
        hour: new Date(H1).toISOString(),
        ip: IP_B,
        password_failures: 3,
        code_failures: 1,
        failures: 4,
        users: 1,
        apps: 1,
      },
      {
        hour: new Date(H1).toISOString(),
        ip: IP_A,
        password_failures: 7,
        code_failures: 0,
        failures: 7,
        users: 7,
        apps: 1,
      },
      {
        hour: new Date(H2).toISOString(),
        ip: IP_B,
        password_failures: 2,
        code_failures: 0,
        failures: 2,
        users: 1,
        apps: 1,
      },
    ]);
  });

  it('counts failed logins by user and hour', async () => {
    const alice = await view(
      `SELECT hour, password_failures, code_failures, failures, ips FROM audit_failed_logins_by_user_hourly WHERE username = 'alice' ORDER BY hour`,
    );
    expect(alice).toEqual([
      { hour: new Date(H1).toISOString(), password_failures: 3, code_failures: 1, failures: 4, ips: 1 },
      { hour: new Date(H2).toISOString(), password_failures: 2, code_failures: 0, failures: 2, ips: 1 },
    ]);
    const all = await view(
      'SELECT count(*) AS n, sum(failures) AS failures FROM audit_failed_logins_by_user_hourly',
    );
    expect(all).toEqual([{ n: 9, failures: 13 }]);
  });

  it('lists lockouts and attacks', async () => {
    const rows = await view(
      `SELECT kind, scope, key, username, host(ip) AS ip, rule, failures, locked_until, lifted_by, attack_kind, evidence
         FROM audit_lockouts_and_attacks ORDER BY occurred_at`,
    );
    expect(rows).toEqual([
      {
        kind: 'attack',
        scope: null,
        key: IP_A,
        username: null,
        ip: IP_A,
        rule: null,
        failures: null,
        locked_until: null,
        lifted_by: null,
        attack_kind: 'credential_stuffing',
        evidence: { users: 7 },
      },
      {
        kind: 'lockout',
        scope: 'ip',
        key: IP_A,
        username: null,
        ip: IP_A,
        rule: 'ip-20-in-5m',
        failures: 7,
        locked_until: null,
        lifted_by: null,
        attack_kind: null,
        evidence: null,
      },
      {
        kind: 'lockout',
        scope: 'user',
        key: 'alice',
        username: 'alice',
        ip: null,
        rule: 'user-5-in-15m',
        failures: 5,
        locked_until: at(H2, 30).toISOString(),
        lifted_by: null,
        attack_kind: null,
        evidence: null,
      },
      {
        kind: 'lift',
        scope: 'user',
        key: 'alice',
        username: 'alice',
        ip: null,
        rule: null,
        failures: null,
        locked_until: null,
        lifted_by: 'admin',
        attack_kind: null,
        evidence: null,
      },
    ]);
  });

  it('measures 2FA adoption by app and by group', async () => {
    expect(await view('SELECT * FROM audit_2fa_adoption_by_app ORDER BY app_id')).toEqual([
      {
        app_id: 'bitbucket',
        users: 1,
        enrolled_users: 1,
        challenged_users: 0,
        verified_users: 0,
        skipped_users: 1,
        adoption_pct: 100,
      },
      {
        app_id: 'confluence',
        users: 3,
        enrolled_users: 1,
        challenged_users: 1,
        verified_users: 1,
        skipped_users: 1,
        adoption_pct: 33.3,
      },
      {
        app_id: 'jira',
        users: 3,
        enrolled_users: 2,
        challenged_users: 2,
        verified_users: 2,
        skipped_users: 1,
        adoption_pct: 66.7,
      },
    ]);
    // bob's latest login listed no groups: his groups come from the one before.
    expect(await view('SELECT * FROM audit_2fa_adoption_by_group ORDER BY group_name')).toEqual([
      { group_name: 'eng', users: 3, enrolled_users: 2, adoption_pct: 66.7 },
      { group_name: 'ops', users: 1, enrolled_users: 1, adoption_pct: 100 },
      { group_name: 'sales', users: 1, enrolled_users: 0, adoption_pct: 0 },
    ]);
    expect(await view('SELECT username, enrolled FROM audit_enrollment_status ORDER BY username')).toEqual([
      { username: 'alice', enrolled: true },
      { username: 'bob', enrolled: false },
      { username: 'dave', enrolled: true },
    ]);
  });

  it('counts decisions and skip reasons per day and app', async () => {
    expect(
      await view(
        `SELECT day, app_id, decision, reason, decisions, users, share_pct FROM audit_2fa_decisions_daily ORDER BY app_id, decision, reason`,
      ),
    ).toEqual([
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'bitbucket',
        decision: 'skip',
        reason: 'session_verified',
        decisions: 1,
        users: 1,
        share_pct: 100,
      },
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'confluence',
        decision: 'challenge',
        reason: 'policy_required',
        decisions: 1,
        users: 1,
        share_pct: 33.3,
      },
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'confluence',
        decision: 'enroll',
        reason: 'not_enrolled',
        decisions: 1,
        users: 1,
        share_pct: 33.3,
      },
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'confluence',
        decision: 'skip',
        reason: 'session_verified',
        decisions: 1,
        users: 1,
        share_pct: 33.3,
      },
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'jira',
        decision: 'challenge',
        reason: 'policy_required',
        decisions: 2,
        users: 2,
        share_pct: 66.7,
      },
      {
        day: `${day}T00:00:00.000Z`,
        app_id: 'jira',
        decision: 'skip',
        reason: 'sso',
        decisions: 1,
        users: 1,
        share_pct: 33.3,
      },
    ]);
  });

  it('finds sessions verified once and used in several apps', async () => {
    expect(
      await view('SELECT session, username, verifications, apps FROM audit_session_usage ORDER BY username'),
    ).toEqual([
      { session: S1, username: 'alice', verifications: 1, apps: 3 },
      { session: S3, username: 'bob', verifications: 2, apps: 2 },
      { session: S4, username: 'carol', verifications: 0, apps: 1 },
      { session: S2, username: 'dave', verifications: 0, apps: 1 },
    ]);
    expect(await view('SELECT * FROM audit_sessions_verified_once_multi_app')).toEqual([
      {
        session: S1,
        username: 'alice',
        verifications: 1,
        first_verified_at: at(H1, 20.5).toISOString(),
        verified_in_app: 'jira',
        apps: 3,
        app_ids: ['bitbucket', 'confluence', 'jira'],
        prompts_skipped: 2,
        first_seen_at: at(H1, 20).toISOString(),
        last_seen_at: at(H1, 27.1).toISOString(),
      },
    ]);
  });
});

describe('analyst role', () => {
  let analyst: Pool;
  beforeAll(() => {
    const url = new URL(world.config.database.url);
    url.username = 'twofold_analyst';
    url.password = 'analyst';
    analyst = createPool({ url: url.toString(), schema: world.config.database.schema, max: 1 });
  });
  afterAll(async () => {
    await analyst?.end();
  });

  it('reads the audit table, every view and the chains (it can run audit verify)', async () => {
    const { rows } = await analyst.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
    for (const name of [
      'audit_failed_logins_by_ip_hourly',
      'audit_failed_logins_by_user_hourly',
      'audit_lockouts_and_attacks',
      'audit_enrollment_status',
      'audit_2fa_adoption_by_app',
      'audit_2fa_adoption_by_group',
      'audit_2fa_decisions_daily',
      'audit_session_usage',
      'audit_sessions_verified_once_multi_app',
    ]) {
      const result = await analyst.query(`SELECT * FROM ${name}`);
      expect(result.rows.length, name).toBeGreaterThan(0);
    }
    expect((await verifyAuditChains(analyst)).ok).toBe(true);
  });

  it.each([
    [
      'insert a row',
      `INSERT INTO audit_events (event_id, occurred_at, type, source, kafka_topic, kafka_partition, kafka_offset, event) VALUES ('x', now(), 't', 's', 'k', 0, 0, '{}')`,
      'permission denied for table audit_events',
    ],
    ['edit a row', `UPDATE audit_events SET reason = 'x'`, 'permission denied for table audit_events'],
    ['delete rows', 'DELETE FROM audit_events', 'permission denied for table audit_events'],
    ['truncate', 'TRUNCATE audit_events', 'permission denied for table audit_events'],
    ['move a chain head', 'UPDATE audit_chains SET head_seq = 0', 'permission denied for table audit_chains'],
    [
      'drop partitions',
      'SELECT drop_audit_partitions(1)',
      'permission denied for function drop_audit_partitions',
    ],
    ['create a table', 'CREATE TABLE analyst_scratch (x int)', 'permission denied for schema'],
    ['read app keys', 'SELECT * FROM apps', 'permission denied for table apps'],
  ])('cannot %s', async (_what, sql, message) => {
    await expect(analyst.query(sql)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringContaining(message),
    });
  });
});
