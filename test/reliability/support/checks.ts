// What the reliability tests check after a run: consumer groups drained, every event stored
// once, the lockouts imposed, sessions verified or not.
import { randomUUID } from 'node:crypto';
import type { TopicRole } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import type { Pool } from '@twofold/store';
import type { Isolated } from '../../support/stack.js';
import { eventually } from '../../support/stack.js';
import { expect } from 'vitest';
import type { RunContext, RunOutcome } from './load-run.js';
import { buildScenario, type Scenario } from './scenario.js';

export const GROUPS = {
  verifier: ['login'],
  'lockout-detector': ['login', 'secondFactor'],
  'session-broadcaster': ['login', 'secondFactor', 'security', 'admin'],
  'audit-sink': ['login', 'secondFactor', 'security', 'session', 'admin', 'dlq'],
} as const;

export async function lags(world: Isolated): Promise<Record<string, number>> {
  const entries = await Promise.all(
    Object.entries(GROUPS).map(async ([service, roles]) => [
      service,
      await groupLag(
        world.kafka,
        `${world.config.kafka.groupPrefix}twofold-${service}`,
        roles.map((r) => world.topics[r]),
      ),
    ]),
  );
  return Object.fromEntries(entries) as Record<string, number>;
}

export async function drained(world: Isolated, timeoutMs = 180_000): Promise<void> {
  let last: Record<string, number> = {};
  await eventually(
    async () => {
      last = await lags(world);
      return Object.values(last).every((l) => l === 0) ? true : undefined;
    },
    timeoutMs,
    'every consumer group to drain',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; lags ${JSON.stringify(last)}`);
  });
}

export interface Stored {
  /** Rows of the produced ids, and how many distinct ids among them. */
  rows: number;
  distinct: number;
  /** Rows of any event id stored more than once (with different times). */
  duplicatedIds: number;
  duplicatedByType: Record<string, number>;
  decisions: number;
  distinctDecisions: number;
  /** Distinct (scope, key) of lockout.imposed events. */
  lockouts: string[];
  lockoutEvents: number;
}

export async function stored(pool: Pool, ids: readonly string[]): Promise<Stored> {
  const own = await pool.query<{ n: string; d: string }>(
    'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events WHERE event_id = ANY($1)',
    [ids],
  );
  const dup = await pool.query<{ type: string; n: string }>(
    'SELECT type, count(*) AS n FROM (SELECT event_id, min(type) AS type FROM audit_events GROUP BY event_id HAVING count(*) > 1) AS d GROUP BY type',
  );
  const decisions = await pool.query<{ n: string; d: string }>(
    "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events WHERE type = 'twofold.2fa.decided'",
  );
  const locks = await pool.query<{ lock: string; n: string }>(
    "SELECT event->'data'->>'scope' || ':' || (event->'data'->>'key') AS lock, count(*) AS n FROM audit_events WHERE type = 'twofold.lockout.imposed' GROUP BY 1 ORDER BY 1",
  );
  return {
    rows: Number(own.rows[0]!.n),
    distinct: Number(own.rows[0]!.d),
    duplicatedIds: dup.rows.reduce((n, r) => n + Number(r.n), 0),
    duplicatedByType: Object.fromEntries(dup.rows.map((r) => [r.type, Number(r.n)])),
    decisions: Number(decisions.rows[0]!.n),
    distinctDecisions: Number(decisions.rows[0]!.d),
    lockouts: locks.rows.map((r) => r.lock).sort(),
    lockoutEvents: locks.rows.reduce((n, r) => n + Number(r.n), 0),
  };
}

/** Whether each session (raw token) is verified, as apps see it through the api. */
export async function sessionsVerified(
  apiUrl: string,
  appKey: string,
  tokens: readonly string[],
): Promise<boolean[]> {
  return Promise.all(
    tokens.map(async (token) => {
      const res = await fetch(`${apiUrl}/v1/sessions/current`, {
        headers: { authorization: `Bearer ${appKey}`, 'x-twofold-session': token },
      });
      const body = (await res.json()) as { verified?: boolean };
      if (res.status !== 200) throw new Error(`sessions/current: ${res.status} ${JSON.stringify(body)}`);
      return body.verified === true;
    }),
  );
}

/**
 * Reads the given topics to their end and counts, per topic, messages whose event id came
 * before: a consumer that redid a batch it had not committed publishes its (deterministic)
 * events again, so this shows work redone after a crash, and proves none after a clean stop.
 */
export async function topicDuplicates(
  world: Isolated,
  roles: readonly TopicRole[],
): Promise<Record<string, number>> {
  const names = roles.map((r) => world.topics[r]);
  const admin = world.kafka.admin();
  await admin.connect();
  let total = 0;
  try {
    for (const topic of names)
      for (const p of await admin.fetchTopicOffsets(topic)) total += Number(p.high) - Number(p.low);
  } finally {
    await admin.disconnect();
  }
  const seen = new Map<string, Set<string>>(names.map((n) => [n, new Set<string>()]));
  const redone: Record<string, number> = Object.fromEntries(roles.map((r) => [r, 0]));
  const roleOf = new Map(roles.map((r) => [world.topics[r], r]));
  let read = 0;
  const consumer = world.kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: names, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        read++;
        const id = (JSON.parse(message.value?.toString() ?? '{}') as { id?: string }).id ?? '';
        const ids = seen.get(topic)!;
        if (ids.has(id)) redone[roleOf.get(topic)!]!++;
        ids.add(id);
      },
    });
    await eventually(async () => (read >= total ? true : undefined), 120_000, `${total} messages read`);
  } finally {
    await consumer.disconnect();
  }
  return redone;
}

/**
 * For each partition of the audit sink's topics: the group's committed offset, and how many
 * rows the sink stored from below and from at-or-above it. After a graceful stop, every
 * message below the commit is stored and none above: the batch in flight was finished and
 * committed, not dropped or left to be redone.
 */
export async function auditCommitted(
  world: Isolated,
  pool: Pool,
): Promise<{ committed: number; storedBelow: number; storedAbove: number }> {
  const admin = world.kafka.admin();
  await admin.connect();
  const offsets = await admin
    .fetchOffsets({
      groupId: `${world.config.kafka.groupPrefix}twofold-audit-sink`,
      topics: GROUPS['audit-sink'].map((r) => world.topics[r]),
    })
    .finally(() => admin.disconnect());
  let committed = 0;
  let storedBelow = 0;
  let storedAbove = 0;
  for (const { topic, partitions } of offsets)
    for (const { partition, offset } of partitions) {
      const at = Math.max(0, Number(offset));
      committed += at;
      const { rows } = await pool.query<{ below: string; above: string }>(
        `SELECT count(*) FILTER (WHERE kafka_offset < $3) AS below, count(*) FILTER (WHERE kafka_offset >= $3) AS above
           FROM audit_events WHERE kafka_topic = $1 AND kafka_partition = $2`,
        [topic, partition, at],
      );
      storedBelow += Number(rows[0]!.below);
      storedAbove += Number(rows[0]!.above);
    }
  return { committed, storedBelow, storedAbove };
}

/** The steady load every reliability file runs (RELIABILITY_FILLER / RELIABILITY_RATE to change it). */
export function loadScenario(seed: string, options: { seconds?: number } = {}) {
  const rate = Number(process.env['RELIABILITY_RATE'] ?? 150);
  // 490 events besides the filler (failures, sessions, logouts).
  const filler = options.seconds
    ? Math.max(500, Math.round(options.seconds * rate) - 490)
    : Number(process.env['RELIABILITY_FILLER'] ?? 2_500);
  const scenario = buildScenario(seed, { fillerLogins: filler });
  return { scenario, rate, seconds: scenario.events.length / rate };
}

/** What every run must show, faults or not: each event stored once, each login decided once,
 * the locks the events call for (the same as a run without faults), sessions verified exactly as the events say,
 * and every service stopped cleanly at the end. */
export function expectNothingLost(
  outcome: RunOutcome,
  scenario: Scenario,
  options: { extraLogins?: number } = {},
): void {
  const logins =
    scenario.events.filter((e) => e.event.type === 'twofold.login.succeeded').length +
    (options.extraLogins ?? 0);
  expect(outcome.stored.rows, 'rows of the produced events').toBe(scenario.events.length);
  expect(outcome.stored.distinct, 'distinct produced events stored').toBe(scenario.events.length);
  expect(outcome.stored.duplicatedIds, 'event ids stored twice').toBe(0);
  expect(outcome.stored.decisions, 'decisions stored').toBe(logins);
  expect(outcome.stored.distinctDecisions, 'distinct decisions').toBe(logins);
  expect(outcome.stored.lockouts, 'lockouts imposed').toEqual(scenario.lockouts);
  expect(outcome.verified.filter((v) => !v).length, 'verified sessions that read unverified').toBe(0);
  expect(outcome.unverified.filter(Boolean).length, 'sessions read verified that were not').toBe(0);
  for (const [service, exit] of outcome.exits)
    expect(exit.code, `${service} exit code after SIGTERM`).toBe(0);
}

/** Prints a test's counts on one line (kept in the test output for the issue). */
export function print(what: string, counts: unknown): void {
  process.stderr.write(`[reliability] ${what}: ${JSON.stringify(counts)}\n`);
}

/** Every service is still the process started first (nobody restarted it), and ready again. */
export async function recoveredUnaided({ services }: RunContext): Promise<void> {
  for (const [name, service] of services) {
    if (!service.running()) {
      const { exitCode, signalCode } = service.child!;
      const why = service
        .log()
        .split('\n')
        .find((l) => /^\w*Error\b|^error:/.test(l));
      throw new Error(
        `${name} exited during the fault (code ${exitCode}, signal ${signalCode}): ${why ?? '?'}; see ${service.logFile}`,
      );
    }
    expect(service.starts, `${name} started once`).toBe(1);
    await service.waitReady();
  }
}
