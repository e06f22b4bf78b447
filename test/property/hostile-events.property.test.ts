// Hostile messages on every topic a twofold consumer reads (fast-check): random bytes,
// random JSON, broken and oversized events, events of another topic's type, valid events
// with one field broken or removed, empty values. Every consumer that reads the topic
// (verifier, lockout detector, session broadcaster, audit sink: the real processes) sends
// each message that is not a valid event of that topic to twofold.dlq.v1 with the reason
// and the original coordinates, keeps running (an unhandled rejection would stop the
// process), and still handles the next good event.
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DLQ_HEADERS,
  createEvent,
  hashSessionToken,
  parseEvent,
  type AnyTwofoldEvent,
  type TopicRole,
} from '@twofold/contracts';
import { createPool, type Pool } from '@twofold/store';
import { startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

const TEST_ID_HEADER = 'twofold-test-id';

/** The consumer groups (service names) that read each topic. */
const READERS: Record<Exclude<TopicRole, 'dlq'>, string[]> = {
  login: [
    'twofold-verifier',
    'twofold-lockout-detector',
    'twofold-session-broadcaster',
    'twofold-audit-sink',
  ],
  secondFactor: ['twofold-lockout-detector', 'twofold-session-broadcaster', 'twofold-audit-sink'],
  security: ['twofold-session-broadcaster', 'twofold-audit-sink'],
  admin: ['twofold-session-broadcaster', 'twofold-audit-sink'],
  session: ['twofold-audit-sink'],
};
type Role = keyof typeof READERS;

let world: Isolated;
let services: RunningServices;
let pool: Pool;
let dlq: Awaited<ReturnType<typeof readTopic>>;

beforeAll(async () => {
  world = await isolated('hostile-events', { database: true });
  services = await startServices(world, [
    'verifier',
    'lockout-detector',
    'session-broadcaster',
    'audit-sink',
  ]);
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
  dlq = await readTopic(world.kafka, world.topics.dlq);
}, 120_000);

afterAll(async () => {
  await dlq?.stop();
  await pool?.end();
  const codes = await services?.stop();
  await world?.cleanup();
  for (const [name, code] of codes ?? []) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

const session = hashSessionToken('hostile');

/** A valid event of each topic, to break one field of. */
function validEvent(role: Role, user: string): AnyTwofoldEvent {
  switch (role) {
    case 'login':
      return createEvent('twofold.login.failed', 'app/jira', user, {
        appId: 'jira',
        ip: '192.0.2.9',
        reason: 'bad_password',
      });
    case 'secondFactor':
      return createEvent('twofold.2fa.failed', 'service/api', user, {
        appId: 'jira',
        session,
        ip: '192.0.2.9',
        reason: 'bad_code',
      });
    case 'security':
      return createEvent('twofold.lockout.imposed', 'service/lockout-detector', user, {
        scope: 'user_ip',
        key: `${user}|192.0.2.9`,
        until: new Date(Date.now() + 60_000).toISOString(),
        failures: 5,
        rule: 'userIp',
      });
    case 'session':
      return createEvent('twofold.session.revoked', 'service/session-broadcaster', user, {
        session,
        reason: 'logout',
      });
    case 'admin':
      return createEvent('twofold.admin.policy.changed' as 'twofold.admin.x', 'service/api', 'admin', {
        by: 'test',
      });
  }
}

const anyJson = fc.jsonValue({ maxDepth: 3 });
const FIELDS = [
  'specversion',
  'id',
  'type',
  'source',
  'subject',
  'time',
  'data',
  'data.appId',
  'data.ip',
  'data.session',
  'data.reason',
  'data.scope',
  'data.until',
];

/** One hostile message for a topic: its value (null: an empty message). */
const hostileValue = (role: Role) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    anyJson.map((v) => Buffer.from(JSON.stringify(v))),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    fc
      .constantFrom(
        '{',
        '{"specversion":"1.0"',
        '[]',
        'null',
        '{"__proto__":{"polluted":true},"specversion":"1.0"}',
        '['.repeat(10_000) + ']'.repeat(10_000),
      )
      .map((s) => Buffer.from(s)),
    fc.constant(null),
    // Oversized: a valid event past the 64 KiB limit.
    fc.constant(role).map((r) => {
      const e = validEvent(r, 'big') as AnyTwofoldEvent & { data: Record<string, unknown> };
      return Buffer.from(JSON.stringify({ ...e, data: { ...e.data, pad: 'x'.repeat(70_000) } }));
    }),
    // A valid event of a type that belongs on another topic.
    fc
      .constantFrom(...(Object.keys(READERS) as Role[]).filter((r) => r !== role))
      .map((other) => Buffer.from(JSON.stringify(validEvent(other, 'elsewhere')))),
    // A valid event of this topic with one field broken or removed.
    fc
      .record({
        field: fc.constantFrom(...FIELDS),
        value: fc.option(anyJson, { nil: undefined }),
        user: fc.string({ maxLength: 20 }),
      })
      .map(({ field, value, user }) => {
        const e = structuredClone(validEvent(role, 'u' + user)) as unknown as Record<
          string,
          Record<string, unknown>
        >;
        const [outer, inner] = field.split('.') as [string, string | undefined];
        const target = inner ? e[outer] : (e as Record<string, unknown>);
        if (target && typeof target === 'object') {
          if (value === undefined) delete target[inner ?? outer];
          else target[inner ?? outer] = value;
        }
        return Buffer.from(JSON.stringify(e));
      }),
  );

const batch = fc.array(
  fc.constantFrom(...(Object.keys(READERS) as Role[])).chain((role) =>
    fc.record({
      role: fc.constant(role),
      value: hostileValue(role),
      key: fc.option(fc.string({ maxLength: 30 }), { nil: null }),
    }),
  ),
  { minLength: 5, maxLength: 25 },
);

describe('hostile events at every consumer', () => {
  it('dead-letters every invalid message with its reason from every group that reads it, and goes on', async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(batch, async (messages) => {
        const tagged = messages.map((m) => ({ ...m, id: randomUUID() }));
        for (const m of tagged) {
          await world.producer.sendRaw(world.topics[m.role], [
            { key: m.key, value: m.value, headers: { [TEST_ID_HEADER]: m.id } },
          ]);
        }
        const expected = tagged.flatMap((m) => {
          const parsed = parseEvent(m.value, m.role);
          return parsed.ok ? [] : READERS[m.role].map((group) => ({ ...m, group, reason: parsed.reason }));
        });
        const groupPrefix = world.config.kafka.groupPrefix;
        const found = await eventually(
          async () => {
            const byKey = new Map(
              dlq.messages.map((d) => [`${d.headers[TEST_ID_HEADER]}|${d.headers[DLQ_HEADERS.consumer]}`, d]),
            );
            const all = expected.map((e) => byKey.get(`${e.id}|${groupPrefix}${e.group}`));
            return all.every(Boolean) ? all : undefined;
          },
          45_000,
          `${expected.length} dead letters`,
        );
        found.forEach((d, i) => {
          const e = expected[i]!;
          expect(d!.headers[DLQ_HEADERS.error]).toBe(e.reason);
          expect(d!.headers[DLQ_HEADERS.topic]).toBe(world.topics[e.role]);
          expect(d!.headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
          // The original bytes are kept.
          expect(d!.value === null ? null : Buffer.from(d!.value).toString('base64')).toBe(
            e.value === null ? null : e.value.toString('base64'),
          );
        });
        checked += expected.length;
        for (const [name, child] of services.processes)
          expect(child.exitCode, `${name} still running`).toBeNull();
      }),
      { numRuns: Number(process.env['PROPERTY_RUNS_EVENTS'] ?? 25), interruptAfterTimeLimit: 150_000 },
    );
    expect(checked).toBeGreaterThan(0);
    if (process.env['PROPERTY_VERBOSE']) process.stderr.write(`dead letters checked: ${checked}\n`);

    // The next good events are handled: a login decided, a failure stored.
    const decided = await readTopic(world.kafka, world.topics.secondFactor);
    const good = createEvent('twofold.login.succeeded', 'app/jira', 'after-the-storm', {
      appId: 'jira',
      session: hashSessionToken(randomUUID()),
      method: 'password',
      ip: '192.0.2.10',
    });
    const failure = validEvent('login', 'after-the-storm');
    await world.producer.publish('login', [good, failure]);
    await eventually(
      async () =>
        decided
          .json<{ type?: string; data?: { loginEventId?: string } }>()
          .find((e) => e?.type === 'twofold.2fa.decided' && e.data?.loginEventId === good.id),
      30_000,
      'the decision on a good login',
    );
    await eventually(
      async () => {
        const { rows } = await pool.query('SELECT 1 FROM audit_events WHERE event_id = $1', [failure.id]);
        return rows.length === 1 ? true : undefined;
      },
      30_000,
      'the good failure stored',
    );
    await decided.stop();
    for (const [name, child] of services.processes)
      expect(child.exitCode, `${name} still running`).toBeNull();
  }, 200_000);
});
