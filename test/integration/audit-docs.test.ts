// docs/analysts.md, run. Every SQL block of the analysts' guide runs as twofold_analyst,
// connected the way the guide says, against a scripted trail (the views' scenario plus what
// the guide's questions look for), and must not fail; the questions whose answer is easy to
// count by hand must give it; and a query that asks for a time window must read only the
// days of that window (partition pruning), not every day kept.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createEvent,
  DLQ_HEADERS,
  hashSessionToken,
  type AnyTwofoldEvent,
  type TopicRole,
} from '@twofold/contracts';
import type { RawConsumed } from '@twofold/kafka';
import {
  attackDetectedEvent,
  GLOBAL_SUBJECT,
  lockoutImposedEvent,
  lockoutLiftedEvent,
  type LockoutFacts,
} from '@twofold/lockout';
import { createAuditRepository, createPool, type AuditRow, type Pool } from '@twofold/store';
import { auditRowFromDlq, auditRowFromEvent } from '../../services/audit-sink/src/audit-row.js';
import { REPO_ROOT, isolated, type Isolated } from '../support/stack.js';
import { at, auditScenario, numbers, type ScenarioEvent } from './audit-scenario.js';

const GUIDE = readFileSync(`${REPO_ROOT}docs/analysts.md`, 'utf8');

/** A fenced sql block of the guide, under the question (bold line) or heading before it. */
interface GuideQuery {
  title: string;
  statements: string[];
}

function guideQueries(markdown: string): GuideQuery[] {
  const out: GuideQuery[] = [];
  let title = '';
  let sql: string[] | undefined;
  for (const line of markdown.split('\n')) {
    if (sql) {
      if (line.startsWith('```')) {
        const statements = sql
          .join('\n')
          .split(/;\s*(?:\n|$)/)
          .map((s) => s.trim())
          .filter((s) => s.length > 0);
        out.push({ title, statements });
        sql = undefined;
      } else sql.push(line);
      continue;
    }
    if (line.startsWith('```sql')) sql = [];
    else if (line.startsWith('## ')) title = line.slice(3).trim();
    else if (line.startsWith('**') && line.indexOf('**', 2) > 2) title = line.slice(2, line.indexOf('**', 2));
  }
  return out;
}

const QUERIES = guideQueries(GUIDE);
const DAY_MS = 86_400_000;
const NOW = Date.now();
const HOUR = Math.floor(NOW / 3_600_000) * 3_600_000;
const ago = (minutes: number) => new Date(NOW - minutes * 60_000);
const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10).replaceAll('-', '');

// The views' scenario, its first hour three hours before this one: all of it in the last
// 24 hours, none of it in the last hour.
const sc = auditScenario(HOUR - 3 * 3_600_000);
const { H1, H2, IP_A, S1 } = sc;
const IP_SPRAY = '192.0.2.200';
const IP_OFFICE = '192.0.2.201';
const IP_RECENT = '192.0.2.202';
// Partitions this many days back: a window of the guide (30 days at most) leaves the oldest out.
const DAYS_BACK = 40;

/** What the guide's questions look for, beyond the views' scenario. */
function guideScenario(): { events: ScenarioEvent[]; dlq: RawConsumed[] } {
  const events: ScenarioEvent[] = [];
  const add = (role: TopicRole, event: AnyTwofoldEvent) => events.push({ role, event });
  const failed = (user: string, ip: string, when: Date) =>
    add(
      'login',
      createEvent(
        'twofold.login.failed',
        'app/jira',
        user,
        { appId: 'jira', ip, reason: 'bad_password' },
        { time: when },
      ),
    );
  // Spraying: twelve users, one password each, from one IP in H2. An office address where
  // ten people mistyped a code in H2 is not spraying (their passwords were right).
  for (let i = 1; i <= 12; i++) failed(`spray${i}`, IP_SPRAY, at(H2, 30 + i / 2));
  for (let i = 1; i <= 10; i++)
    add(
      'secondFactor',
      createEvent(
        'twofold.2fa.failed',
        'service/api',
        `staff${i}`,
        { appId: 'jira', session: hashSessionToken(randomUUID()), ip: IP_OFFICE, reason: 'bad_code' },
        { time: at(H2, 40 + i / 2) },
      ),
    );
  // kim is guessed at from five places in H2.
  for (let i = 1; i <= 5; i++) failed('kim', `198.51.100.${100 + i}`, at(H2, 10 + i));
  // The last hour's failures: one IP, two users.
  failed('xavier', IP_RECENT, ago(10));
  failed('yolanda', IP_RECENT, ago(9));
  failed('xavier', IP_RECENT, ago(8));

  // Lockouts as the detector and the api announce them: erin is locked, the lock widened and
  // lifted by an admin, then locked again (in force); frank's forced second factor expires.
  const erin1: LockoutFacts = {
    lockId: 'lock-erin-1',
    scope: 'user',
    key: 'erin',
    mode: 'deny',
    rule: 'user_failures',
    until: ago(20).toISOString(),
    failures: 5,
    level: 1,
  };
  const erin2: LockoutFacts = { ...erin1, lockId: 'lock-erin-2', until: at(NOW, 30).toISOString(), level: 2 };
  const frank: LockoutFacts = {
    ...erin1,
    lockId: 'lock-frank-1',
    key: 'frank',
    mode: 'force_second_factor',
    rule: 'user_many_sources',
    until: ago(12).toISOString(),
  };
  add('security', lockoutImposedEvent(erin1, { time: ago(50) }));
  add(
    'security',
    lockoutImposedEvent({ ...erin1, sparesKnownNetworks: false }, { time: ago(45), widened: true }),
  );
  add('security', lockoutLiftedEvent(erin1, 'admin', { time: ago(40), source: 'service/api' }));
  add('security', lockoutImposedEvent(erin2, { time: ago(30) }));
  add('security', lockoutImposedEvent(frank, { time: ago(32) }));
  add('security', lockoutLiftedEvent(frank, 'expiry', { time: ago(12) }));
  add(
    'security',
    attackDetectedEvent(
      'password_spraying',
      GLOBAL_SUBJECT,
      { users: 12 },
      { time: ago(15), idParts: ['s1'] },
    ),
  );

  // IdP logins: gina's IdP asserted a software key (a second factor to twofold), hank's nothing.
  const sso = (user: string, app: string, minutesAgo: number, amr?: string[]) => {
    const session = hashSessionToken(randomUUID());
    const login = createEvent(
      'twofold.login.succeeded',
      `app/${app}`,
      user,
      { appId: app, session, method: 'sso', ip: '192.0.2.60', idp: 'okta', ...(amr ? { amr } : {}) },
      { time: ago(minutesAgo) },
    );
    add('login', login);
    return { login, session };
  };
  const gina = sso('gina', 'jira', 20, ['pwd', 'swk']);
  add(
    'secondFactor',
    createEvent(
      'twofold.2fa.decided',
      'service/verifier',
      'gina',
      { loginEventId: gina.login.id, appId: 'jira', session: gina.session, decision: 'skip', reason: 'sso' },
      { time: ago(19.9) },
    ),
  );
  sso('hank', 'confluence', 19);

  // Decided without state: one now, one ten days ago (outside the guide's 7 days).
  for (const when of [ago(5), new Date(NOW - 10 * DAY_MS)])
    add(
      'secondFactor',
      createEvent(
        'twofold.2fa.decided',
        'service/verifier',
        'ivan',
        {
          loginEventId: randomUUID(),
          appId: 'jira',
          session: hashSessionToken(randomUUID()),
          decision: 'challenge',
          reason: 'state_unavailable',
          challengeId: randomUUID(),
        },
        { time: when },
      ),
    );

  // Admin actions: a policy rule naming alice (stored under the admin), bob's reset.
  add(
    'admin',
    createEvent(
      'twofold.admin.policy_rule_set',
      'service/api',
      'admin',
      { actor: 'admin', kind: 'user', subject: 'alice', mode: 'exempt' },
      { time: ago(8) },
    ),
  );
  add(
    'admin',
    createEvent(
      'twofold.admin.enrollment_reset',
      'service/api',
      'bob',
      { actor: 'admin', username: 'bob' },
      { time: at(H1, -30) },
    ),
  );

  // One malformed login message, refused (and reported) by two consumer groups.
  const dlq = ['audit-sink', 'verifier'].map((group, i): RawConsumed => ({
    topic: 'twofold.dlq.v1',
    partition: 0,
    offset: String(7 + i),
    message: {
      key: Buffer.from('alice'),
      value: Buffer.from('not json'),
      timestamp: String(ago(6 - i).getTime()),
      attributes: 0,
      offset: String(7 + i),
      headers: {
        [DLQ_HEADERS.error]: Buffer.from('event must be a JSON object'),
        [DLQ_HEADERS.topic]: Buffer.from('twofold.login.v1'),
        [DLQ_HEADERS.partition]: Buffer.from('2'),
        [DLQ_HEADERS.offset]: Buffer.from('42'),
        [DLQ_HEADERS.consumer]: Buffer.from(group),
      },
    },
  }));
  return { events, dlq };
}

let world: Isolated;
let pool: Pool;
let analyst: Pool;

/**
 * The guide's connection string: the analyst's role and password, and options that set the
 * schema and UTC for the session. The test connects as that role to its own schema, with
 * the same settings (the store's pool sets them the same way).
 */
function documentedConnection(): { username: string; password: string; options: string } {
  const command = /^psql "([^"]+)"/m.exec(GUIDE);
  if (!command) throw new Error('docs/analysts.md: no psql "<connection string>" line');
  const url = new URL(command[1]!);
  return { username: url.username, password: url.password, options: url.searchParams.get('options') ?? '' };
}

// The guide's placeholders, and what they stand for here.
const PLACEHOLDERS: [string, () => string][] = [['…64 hex characters…', () => S1]];

function runnable(statement: string): string {
  let sql = statement;
  for (const [placeholder, value] of PLACEHOLDERS) sql = sql.replaceAll(placeholder, value());
  return sql;
}

/** Results of every statement, by block title (the last statement's rows). */
const results = new Map<string, Record<string, unknown>[]>();
const failures: string[] = [];

function answer(title: string): Record<string, unknown>[] {
  const rows = results.get(title);
  if (!rows)
    throw new Error(
      `docs/analysts.md has no query under "${title}" (or it failed); titles: ${[...results.keys()].join(' | ')}`,
    );
  return rows;
}

beforeAll(async () => {
  world = await isolated('audit-docs', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  await pool.query('SELECT ensure_audit_partitions($1, 14)', [DAYS_BACK]);
  const extra = guideScenario();
  const rows: AuditRow[] = [...sc.events, ...extra.events].map(({ role, event }, i) =>
    auditRowFromEvent({
      event,
      role,
      topic: world.topics[role],
      partition: 0,
      offset: String(i),
      timestamp: Date.parse(event.time),
      key: null,
      traceContext: ROOT_CONTEXT,
    }),
  );
  rows.push(...extra.dlq.map(auditRowFromDlq));
  await createAuditRepository(pool).insertMany(rows);

  const documented = documentedConnection();
  const url = new URL(world.config.database.url);
  url.username = documented.username;
  url.password = documented.password;
  analyst = createPool({ url: url.toString(), schema: world.config.database.schema, max: 1 });
  for (const query of QUERIES) {
    for (const statement of query.statements) {
      try {
        const result = await analyst.query<Record<string, unknown>>(runnable(statement));
        results.set(query.title, result.rows.map(numbers));
      } catch (err) {
        failures.push(`"${query.title}": ${(err as Error).message}\n${statement}`);
      }
    }
  }
});

afterAll(async () => {
  await analyst?.end();
  await pool?.end();
  await world?.cleanup();
});

describe('docs/analysts.md', () => {
  it('has SQL blocks, and a connection string that sets the schema and UTC for twofold_analyst', async () => {
    expect(QUERIES.length).toBeGreaterThanOrEqual(15);
    const documented = documentedConnection();
    expect(documented.username).toBe('twofold_analyst');
    expect(documented.options.split(/\s+/).sort()).toEqual(['-cTimeZone=UTC', '-csearch_path=twofold']);
    const { rows } = await analyst.query<{ search_path: string; tz: string; role: string }>(
      `SELECT current_setting('search_path') AS search_path, current_setting('TimeZone') AS tz, current_user AS role`,
    );
    expect(rows[0]).toEqual({
      search_path: `"${world.config.database.schema}",public`,
      tz: 'UTC',
      role: 'twofold_analyst',
    });
  });

  it('runs every SQL statement as twofold_analyst without an error', () => {
    expect(failures).toEqual([]);
    for (const query of QUERIES)
      for (const statement of query.statements)
        expect(statement.includes('…'), `unfilled placeholder in "${query.title}"`).toBe(
          PLACEHOLDERS.some(([p]) => statement.includes(p)),
        );
  });

  it('answers who signed in in the last 24 hours', () => {
    const rows = answer('Who signed in, where and how, in the last 24 hours?');
    // The scenario's seven logins and gina's and hank's IdP logins.
    expect(rows.map((r) => r['username']).sort()).toEqual([
      'alice',
      'alice',
      'alice',
      'bob',
      'bob',
      'carol',
      'dave',
      'gina',
      'hank',
    ]);
  });

  it("lists a user's week, the admin's policy rule about them included", () => {
    const rows = answer('Everything that happened to one user in the last 7 days');
    const types = rows.map((r) => r['type']);
    expect(types).toContain('twofold.admin.policy_rule_set');
    expect(types).toContain('twofold.lockout.lifted');
    expect(types.filter((t) => t === 'twofold.login.failed')).toHaveLength(5);
    expect(types.filter((t) => t === 'twofold.login.succeeded')).toHaveLength(3);
  });

  it('finds the IPs failing in the last hour', () => {
    expect(answer('Which IPs failed most in the last hour?')).toEqual([
      { ip: IP_RECENT, failures: 3, users: 2, apps: 1 },
    ]);
  });

  it('finds password spraying, not an office where people mistyped codes', () => {
    expect(
      answer('Password spraying: one IP, many users, few password tries each').map((r) => ({
        ...r,
        ip: String(r['ip']),
      })),
    ).toEqual([{ hour: new Date(H2).toISOString(), ip: IP_SPRAY, users: 12, password_failures: 12 }]);
  });

  it('finds users guessed at from many places', () => {
    expect(answer('Which users are being guessed at from many places?')).toEqual([
      { hour: new Date(H2).toISOString(), username: 'kim', failures: 5, ips: 5 },
    ]);
  });

  it('counts tries of usernames that do not exist', () => {
    expect(
      answer('Failed logins for usernames that do not exist').map(({ ip, tries, names }) => ({
        ip,
        tries,
        names,
      })),
    ).toEqual([{ ip: IP_A, tries: 2, names: 2 }]);
  });

  it('lists lockouts with their lift and who lifted them', () => {
    const rows = answer('Lockouts of the last 7 days, and which an admin lifted:')
      .filter((r) => r['lock_id'] !== null)
      .map(({ lock_id, key, mode, lifted_at, lifted_by }) => ({ lock_id, key, mode, lifted_at, lifted_by }));
    expect(rows).toEqual([
      { lock_id: 'lock-erin-2', key: 'erin', mode: 'deny', lifted_at: null, lifted_by: null },
      {
        lock_id: 'lock-frank-1',
        key: 'frank',
        mode: 'force_second_factor',
        lifted_at: ago(12).toISOString(),
        lifted_by: 'expiry',
      },
      // Widened, so announced twice: one lockout.
      {
        lock_id: 'lock-erin-1',
        key: 'erin',
        mode: 'deny',
        lifted_at: ago(40).toISOString(),
        lifted_by: 'admin',
      },
      {
        lock_id: 'lock-erin-1',
        key: 'erin',
        mode: 'deny',
        lifted_at: ago(40).toISOString(),
        lifted_by: 'admin',
      },
    ]);
  });

  it('counts attacks per kind', () => {
    expect(
      answer('Attacks detected per day and kind')
        .map(({ attack_kind, attacks, keys }) => ({ attack_kind, attacks, keys }))
        .sort((a, b) => String(a.attack_kind).localeCompare(String(b.attack_kind))),
    ).toEqual([
      { attack_kind: 'credential_stuffing', attacks: 1, keys: 1 },
      { attack_kind: 'password_spraying', attacks: 1, keys: 1 },
    ]);
  });

  it('finds who signed in without an authenticator', () => {
    expect(
      answer('Who signed in during the last 30 days without an authenticator?').map((r) => r['username']),
    ).toEqual(['bob', 'carol', 'gina', 'hank']);
  });

  it('counts skips per app and reason in the last 7 days', () => {
    expect(answer('How often is the second factor skipped, and why?')).toEqual([
      { app_id: 'bitbucket', reason: 'session_verified', skips: 1, users: 1 },
      { app_id: 'confluence', reason: 'session_verified', skips: 1, users: 1 },
      { app_id: 'jira', reason: 'sso', skips: 2, users: 2 },
    ]);
  });

  it('counts decisions taken without state in the last 7 days only', () => {
    expect(
      answer('Decisions taken without state').map(({ hour, decisions }) => ({ hour, decisions })),
    ).toEqual([
      { hour: new Date(Math.floor(ago(5).getTime() / 3_600_000) * 3_600_000).toISOString(), decisions: 1 },
    ]);
  });

  it('finds IdP logins without a second factor, as twofold reads amr', () => {
    expect(
      answer('IdP logins whose IdP did not assert a second factor')
        .map((r) => r['username'])
        .sort(),
    ).toEqual(['dave', 'hank']);
  });

  it('counts sessions verified once and used in several apps', () => {
    expect(
      answer(
        'Verify once, trusted everywhere: sessions verified once and used in several apps, and prompts saved:',
      ),
    ).toEqual([{ sessions: 1, prompts_saved: 2, apps_per_session: 3 }]);
  });

  it('shows where one session was used', () => {
    expect(
      answer('Where was one SSO session used?').map(({ username, app_ids }) => ({ username, app_ids })),
    ).toEqual([{ username: 'alice', app_ids: ['bitbucket', 'confluence', 'jira'] }]);
  });

  it('lists admin actions', () => {
    expect(
      answer('Who changed the policy, unlocked users or reset authenticators?').map(({ type, actor }) => ({
        type,
        actor,
      })),
    ).toEqual([
      { type: 'twofold.admin.policy_rule_set', actor: 'admin' },
      { type: 'twofold.admin.enrollment_reset', actor: 'admin' },
    ]);
  });

  it('counts a malformed message once, however many groups refused it', () => {
    expect(answer('Messages refused as malformed, by reason and producer topic')).toEqual([
      {
        topic: 'twofold.login.v1',
        reason: 'event must be a JSON object',
        messages: 1,
        refusals: 2,
        refused_by: 'consumer/audit-sink, consumer/verifier',
      },
    ]);
  });

  it('reads the chain heads', () => {
    expect(answer('Is the trail intact?').length).toBeGreaterThan(0);
  });
});

describe('docs/analysts.md time windows', () => {
  // audit_enrollment_status is every user's latest enrollment event, however old: read in full.
  const readsEveryDay = new Set(['Who signed in during the last 30 days without an authenticator?']);
  const windowed = QUERIES.flatMap((q) =>
    q.statements
      .filter((s) => /occurred_at > now\(\) - interval/.test(s) && !readsEveryDay.has(q.title))
      .map((s) => [q.title, s] as const),
  );

  it('has windowed queries', () => {
    expect(windowed.length).toBeGreaterThanOrEqual(8);
  });

  it.each(windowed)('"%s" reads only the days of its window', async (_title, statement) => {
    const oldest = `audit_events_${ymd(NOW - DAYS_BACK * DAY_MS)}`;
    const { rows } = await analyst.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ${runnable(statement)}`,
    );
    const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
    expect(plan).toMatch(/on audit_events_\d{8}/);
    expect(plan, plan).not.toContain(oldest);
  });
});
