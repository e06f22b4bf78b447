// GET /v1/admin/audit against the real api process: events reach the audit trail through
// Kafka and the sink (an admin action through the api too), and the route filters them,
// pages through them with an opaque cursor (no row twice, none skipped, ties included),
// and answers bad input with problem+json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type AnyTwofoldEvent } from '@twofold/contracts';
import { createAuditRepository, createPool, type Pool } from '@twofold/store';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let services: RunningServices;
let pool: Pool;
let sink: ReturnType<typeof buildAuditSink>;

interface AuditEventView {
  eventId: string;
  type: string;
  occurredAt: string;
  appId: string | null;
  username: string | null;
  outcome: string | null;
  kafka: { topic: string; partition: number; offset: string };
  event: { id: string; data: Record<string, unknown> };
}
interface Page {
  events: AuditEventView[];
  nextCursor: string | null;
}
interface ProblemBody {
  type: string;
  status: number;
  detail: string;
}

const admin = () => apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
const base = Date.parse(`${new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)}T10:00:00.000Z`);
const events: AnyTwofoldEvent[] = [];

beforeAll(async () => {
  world = await isolated('audit-api', { database: true });
  services = await startServices(world, ['api']);
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
  // pat: 60 failures a minute apart alternating jira/confluence, then 10 at one same instant;
  // quinn: 20 in jira.
  for (let i = 0; i < 60; i++) {
    const app = i % 2 === 0 ? 'jira' : 'confluence';
    events.push(
      createEvent(
        'twofold.login.failed',
        `app/${app}`,
        'pat',
        { appId: app, ip: '192.0.2.1', reason: 'bad_password' },
        { time: new Date(base + i * 60_000) },
      ),
    );
  }
  for (let i = 0; i < 10; i++) {
    events.push(
      createEvent(
        'twofold.login.failed',
        'app/jira',
        'pat',
        { appId: 'jira', ip: '192.0.2.2', reason: 'unknown_user' },
        { time: new Date(base + 3_600_000) },
      ),
    );
  }
  for (let i = 0; i < 20; i++) {
    events.push(
      createEvent(
        'twofold.login.failed',
        'app/jira',
        'quinn',
        { appId: 'jira', ip: '192.0.2.3', reason: 'bad_password' },
        { time: new Date(base + i * 60_000 + 30_000) },
      ),
    );
  }
  await world.producer.publish('login', events);
  await eventually(
    async () => {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
      return Number(rows[0]!.n) >= events.length ? true : undefined;
    },
    60_000,
    'events stored',
  );
}, 180_000);

afterAll(async () => {
  await sink?.stop();
  await pool?.end();
  await services?.stop();
  await world?.cleanup();
});

async function allPages(query: string, limit: number): Promise<{ pages: number; events: AuditEventView[] }> {
  const out: AuditEventView[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const res: { status: number; body: Page } = await admin()<Page>(
      'GET',
      `/v1/admin/audit?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    out.push(...res.body.events);
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor && pages < 100);
  return { pages, events: out };
}

const newestFirst = (list: readonly AnyTwofoldEvent[]) =>
  [...list]
    .sort((a, b) => Date.parse(b.time) - Date.parse(a.time) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .map((e) => e.id);

describe('GET /v1/admin/audit', () => {
  it('pages through one user newest first, ties included, without repeating or skipping a row', async () => {
    const { pages, events: got } = await allPages('user=PAT', 7);
    const pat = events.filter((e) => e.subject === 'pat');
    expect(got.map((e) => e.eventId)).toEqual(newestFirst(pat));
    expect(pages).toBe(10);
    expect(got[0]).toMatchObject({
      type: 'twofold.login.failed',
      username: 'pat',
      outcome: 'failure',
      kafka: { topic: world.topics.login },
    });
    expect(got[0]!.event.id).toBe(got[0]!.eventId);
  });

  it('filters by app, type and time window', async () => {
    const jira = await allPages('app=jira&user=pat', 50);
    expect(jira.events.map((e) => e.eventId)).toEqual(
      newestFirst(events.filter((e) => e.subject === 'pat' && e.source === 'app/jira')),
    );
    const from = new Date(base + 10 * 60_000).toISOString();
    const to = new Date(base + 20 * 60_000).toISOString();
    const window = await allPages(`from=${from}&to=${to}&type=twofold.login.failed`, 100);
    // [from, to): minutes 10..19 of pat and quinn's 10:xx:30 in minutes 10..19.
    expect(window.events).toHaveLength(20);
    expect(window.events.every((e) => e.occurredAt >= from && e.occurredAt < to)).toBe(true);
    const none = await admin()<Page>('GET', '/v1/admin/audit?type=twofold.session.validated');
    expect(none.body).toEqual({ events: [], nextCursor: null });
  });

  it('shows admin actions taken through the api', async () => {
    const put = await admin()('PUT', '/v1/admin/policy/users/pat', { mode: 'require' });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    const page = await eventually(
      async () => {
        const res = await admin()<Page>('GET', '/v1/admin/audit?type=twofold.admin.*');
        return res.body.events.length > 0 ? res.body : undefined;
      },
      30_000,
      'the admin action in the audit trail',
    );
    expect(page.events[0]).toMatchObject({
      type: 'twofold.admin.policy_rule_set',
      outcome: 'policy_rule_set',
      kafka: { topic: world.topics.admin },
      event: { data: { kind: 'user', subject: 'pat', mode: 'require' } },
    });
  });

  it.each([
    ['a time that is not one', 'from=yesterday', /querystring\.from must match format "date-time"/],
    [
      'a window the wrong way round',
      `from=${new Date(base + 60_000).toISOString()}&to=${new Date(base).toISOString()}`,
      /from must be earlier than querystring\.to/,
    ],
    ['a cursor it did not hand out', 'cursor=bm90LWEtY3Vyc29y', /cursor is not one this API returned/],
    ['a page size out of range', 'limit=0', /querystring\.limit must be >= 1/],
    ['an app id that cannot exist', 'app=Not%20An%20App', /querystring\.app must match pattern/],
    ['a filter it does not know', 'username=pat', /querystring must NOT have additional properties/],
  ])('answers %s with 400 problem+json', async (_what, query, detail) => {
    const res = await admin()<ProblemBody>('GET', `/v1/admin/audit?${query}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.detail).toMatch(detail);
  });

  it('needs the admin key', async () => {
    const res = await apiClient(services.apiUrl)<ProblemBody>('GET', '/v1/admin/audit');
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
