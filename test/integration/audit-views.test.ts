// The analysts' database: a scripted day of logins, failures, lockouts, decisions and
// verifications goes through Kafka and the sink, and every view returns the figures a
// person would count by hand. The analyst role reads everything it is meant to and
// writes nothing.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import { createAuditRepository, createPool, verifyAuditChains, type Pool } from '@twofold/store';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;
let sink: ReturnType<typeof buildAuditSink>;

// Yesterday (UTC), so its partition exists; H1 and H2 are two consecutive hours.
const day = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
const H1 = Date.parse(`${day}T08:00:00.000Z`);
const H2 = H1 + 3_600_000;
const at = (base: number, minutes: number) => new Date(base + minutes * 60_000);
const IP_A = '203.0.113.5';
const IP_B = '198.51.100.7';
const S1 = hashSessionToken(`alice-${randomUUID()}`);
const S2 = hashSessionToken(`dave-${randomUUID()}`);
const S3 = hashSessionToken(`bob-${randomUUID()}`);
const S4 = hashSessionToken(`carol-${randomUUID()}`);

function scenario(): { role: TopicRole; event: AnyTwofoldEvent }[] {
  const out: { role: TopicRole; event: AnyTwofoldEvent }[] = [];
  const add = (role: TopicRole, event: AnyTwofoldEvent) => out.push({ role, event });
  const failed = (
    user: string,
    ip: string,
    app: string,
    when: Date,
    reason: 'bad_password' | 'unknown_user' = 'bad_password',
  ) =>
    add(
      'login',
      createEvent('twofold.login.failed', `app/${app}`, user, { appId: app, ip, reason }, { time: when }),
    );

  // Failed logins: IP A sprays seven names in H1; alice fails from IP B in H1 and H2.
  ['u1', 'u2', 'u3', 'u4', 'u5'].forEach((u, i) => failed(u, IP_A, 'jira', at(H1, i + 1)));
  failed('ghost1', IP_A, 'jira', at(H1, 6), 'unknown_user');
  failed('ghost2', IP_A, 'jira', at(H1, 7), 'unknown_user');
  [10, 11, 12].forEach((m) => failed('alice', IP_B, 'confluence', at(H1, m)));
  [5, 6].forEach((m) => failed('alice', IP_B, 'confluence', at(H2, m)));
  add(
    'secondFactor',
    createEvent(
      'twofold.2fa.failed',
      'service/api',
      'alice',
      { appId: 'confluence', session: S1, ip: IP_B, reason: 'bad_code' },
      { time: at(H1, 13) },
    ),
  );

  // Lockouts and attacks.
  add(
    'security',
    createEvent(
      'twofold.attack.detected',
      'service/lockout-detector',
      IP_A,
      { kind: 'credential_stuffing', key: IP_A, evidence: { users: 7 } },
      { time: at(H1, 8) },
    ),
  );
  add(
    'security',
    createEvent(
      'twofold.lockout.imposed',
      'service/lockout-detector',
      IP_A,
      { scope: 'ip', key: IP_A, until: null, failures: 7, rule: 'ip-20-in-5m' },
      { time: at(H1, 9) },
    ),
  );
  add(
    'security',
    createEvent(
      'twofold.lockout.imposed',
      'service/lockout-detector',
      'alice',
      { scope: 'user', key: 'alice', until: at(H2, 30).toISOString(), failures: 5, rule: 'user-5-in-15m' },
      { time: at(H1, 12) },
    ),
  );
  add(
    'security',
    createEvent(
      'twofold.lockout.lifted',
      'service/api',
      'alice',
      { scope: 'user', key: 'alice', by: 'admin' },
      { time: at(H1, 40) },
    ),
  );

  // Enrollment: alice, bob and dave enroll; bob's authenticator is reset; carol never enrolls.
  ['alice', 'bob', 'dave'].forEach((u, i) =>
    add(
      'secondFactor',
      createEvent(
        'twofold.enrollment.activated',
        'service/api',
        u,
        { method: 'generated' },
        { time: at(H1, -60 + i) },
      ),
    ),
  );
  add(
    'secondFactor',
    createEvent('twofold.enrollment.reset', 'service/api', 'bob', { by: 'admin' }, { time: at(H1, -30) }),
  );

  // Logins, decisions and verifications.
  const login = (
    user: string,
    app: string,
    session: string,
    minute: number,
    groups?: string[],
    method: 'password' | 'sso' = 'password',
  ) => {
    const event = createEvent(
      'twofold.login.succeeded',
      `app/${app}`,
      user,
      { appId: app, session, method, ip: '192.0.2.50', ...(groups ? { groups } : {}) },
      { time: at(H1, minute) },
    );
    add('login', event);
    return event.id;
  };
  const decided = (
    user: string,
    app: string,
    session: string,
    loginEventId: string,
    minute: number,
    decision: 'challenge' | 'skip' | 'enroll',
    reason: 'policy_required' | 'session_verified' | 'sso' | 'not_enrolled',
  ) =>
    add(
      'secondFactor',
      createEvent(
        'twofold.2fa.decided',
        'service/verifier',
        user,
        {
          loginEventId,
          appId: app,
          session,
          decision,
          reason,
          ...(decision === 'challenge' ? { challengeId: randomUUID() } : {}),
        },
        { time: at(H1, minute + 0.1) },
      ),
    );
  const verified = (user: string, app: string, session: string, minute: number) =>
    add(
      'secondFactor',
      createEvent(
        'twofold.2fa.verified',
        'service/api',
        user,
        { appId: app, session, method: 'totp' },
        { time: at(H1, minute + 0.5) },
      ),
    );

  decided(
    'alice',
    'jira',
    S1,
    login('alice', 'jira', S1, 20, ['eng', 'ops']),
    20,
    'challenge',
    'policy_required',
  );
  verified('alice', 'jira', S1, 20);
  decided(
    'alice',
    'confluence',
    S1,
    login('alice', 'confluence', S1, 25, ['eng', 'ops']),
    25,
    'skip',
    'session_verified',
  );
  decided('alice', 'bitbucket', S1, login('alice', 'bitbucket', S1, 27), 27, 'skip', 'session_verified');
  decided('bob', 'jira', S3, login('bob', 'jira', S3, 21, ['eng']), 21, 'challenge', 'policy_required');
  verified('bob', 'jira', S3, 21);
  decided('bob', 'confluence', S3, login('bob', 'confluence', S3, 30), 30, 'challenge', 'policy_required');
  verified('bob', 'confluence', S3, 30);
  decided(
    'carol',
    'confluence',
    S4,
    login('carol', 'confluence', S4, 22, ['sales']),
    22,
    'enroll',
    'not_enrolled',
  );
  decided('dave', 'jira', S2, login('dave', 'jira', S2, 23, ['eng'], 'sso'), 23, 'skip', 'sso');
  return out;
}

const numbers = <T extends Record<string, unknown>>(row: T) =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k,
      typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)
        ? Number(v)
        : v instanceof Date
          ? v.toISOString()
          : v,
    ]),
  );

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
  const items = scenario();
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
