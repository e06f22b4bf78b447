// SIGTERM to each service in turn in the middle of the load (issue 9): it finishes the work
// in flight and commits it within its shutdown deadline, then exits 0; started again, it
// goes on from its commit. Proof that nothing was dropped or left to be redone:
// - the process exits 0 without logging `shutdown deadline passed` (SHUTDOWN_TIMEOUT_MS);
// - the audit sink, right after it exits, has stored every message below its group's
//   committed offsets and none at or above them;
// - no output topic holds an event twice (a consumer that had not committed its batch would
//   publish its deterministic events again when restarted), and the audit holds each once;
// - the api accepted (202) login events until it closed, each of them is stored, and it
//   refused the rest with nothing but 503 (fastify's answer while closing) or a closed port.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createPool } from '@twofold/store';
import { apiClient } from '../support/services.js';
import { auditCommitted, expectNothingLost, loadScenario, print } from './support/checks.js';
import { ALL_SERVICES, runUnderLoad, summary, type Fault } from './support/load-run.js';

const { scenario, rate, seconds } = loadScenario('st');

interface Stop {
  service: string;
  code: number | null;
  ms: number;
  deadlinePassed: boolean;
  audit?: Awaited<ReturnType<typeof auditCommitted>>;
  api?: {
    accepted: number;
    refused: Record<number, number>;
    failed: number;
    sample: Record<number, unknown>;
  };
}

const apiAccepted: string[] = [];

/** Login events posted to the api, 20 at a time, until `until` resolves. */
async function postLogins(url: string, key: string, until: Promise<unknown>) {
  const jira = apiClient(url, key);
  const counts = {
    accepted: 0,
    refused: {} as Record<number, number>,
    failed: 0,
    sample: {} as Record<number, unknown>,
  };
  let done = false;
  void until.finally(() => (done = true));
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (!done) {
        const id = randomUUID();
        try {
          const res = await jira('POST', '/v1/login-events', {
            type: 'twofold.login.succeeded',
            id,
            subject: `api-${id.slice(0, 8)}`,
            data: { appId: 'jira', session: 'a'.repeat(64), method: 'sso', ip: '203.0.113.7' },
          });
          if (res.status === 202) {
            counts.accepted++;
            apiAccepted.push(id);
          } else {
            counts.refused[res.status] = (counts.refused[res.status] ?? 0) + 1;
            counts.sample[res.status] ??= res.body;
          }
        } catch {
          // The listener is closed: a new connection is refused, which an app retries.
          counts.failed++;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
  return counts;
}

const terminate = (name: (typeof ALL_SERVICES)[number], atSecond: number): Fault => ({
  atSecond,
  async run({ world, services, jiraKey }): Promise<Stop> {
    const service = services.get(name)!;
    let posting: Promise<Stop['api']> | undefined;
    let exited!: () => void;
    const exit = new Promise<void>((resolve) => (exited = resolve));
    if (name === 'api') {
      posting = postLogins(service.url, jiraKey, exit);
      await new Promise((r) => setTimeout(r, 1_000)); // requests in flight when the signal lands
    }
    const logBefore = service.log().length;
    const stopped = await service.kill('SIGTERM');
    exited();
    const log = service.log().slice(logBefore);
    const stop: Stop = {
      service: name,
      code: stopped.code,
      ms: stopped.ms,
      deadlinePassed: log.includes('shutdown deadline passed'),
    };
    if (name === 'audit-sink') {
      const pool = createPool({
        url: world.config.database.url,
        schema: world.config.database.schema,
        max: 1,
      });
      stop.audit = await auditCommitted(world, pool).finally(() => pool.end());
    }
    if (posting) stop.api = await posting;
    await service.start();
    return stop;
  },
});

describe('SIGTERM each service in turn under load', () => {
  it('finishes the work in flight and commits it within the deadline', async () => {
    const gap = seconds / (ALL_SERVICES.length + 1);
    const outcome = await runUnderLoad('sigterm', {
      scenario,
      rate,
      faults: ALL_SERVICES.map((name, i) => terminate(name, gap * (i + 1))),
      inspect: async (_ctx, pool) => {
        const { rows } = await pool.query<{ n: string; d: string }>(
          'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events WHERE event_id = ANY($1)',
          [apiAccepted],
        );
        return { rows: Number(rows[0]!.n), distinct: Number(rows[0]!.d) };
      },
    });
    const stops = outcome.faults as Stop[];
    const apiStored = outcome.inspected as { rows: number; distinct: number };
    print('sigterm', {
      events: scenario.events.length,
      rate,
      stops,
      apiAccepted: apiAccepted.length,
      apiStored,
      ...summary(outcome),
    });

    expect(stops.map((s) => s.service)).toEqual([...ALL_SERVICES]);
    for (const stop of stops) {
      expect(stop.code, `${stop.service} exit code`).toBe(0);
      expect(stop.deadlinePassed, `${stop.service} passed its shutdown deadline`).toBe(false);
    }
    const audit = stops.find((s) => s.service === 'audit-sink')!.audit!;
    expect(audit.committed, 'audit sink had committed work').toBeGreaterThan(0);
    expect(audit.storedBelow, 'rows below the committed offsets').toBe(audit.committed);
    expect(audit.storedAbove, 'rows at or above the committed offsets').toBe(0);
    const api = stops.find((s) => s.service === 'api')!.api!;
    expect(api.accepted, 'login events the api accepted around its stop').toBeGreaterThan(0);
    // While closing, fastify answers requests on open connections 503 (Connection: close):
    // not taken, for the app to retry. Anything else would be an error.
    expect(
      Object.keys(api.refused).filter((s) => s !== '503'),
      'api answers other than 202/503',
    ).toEqual([]);
    expect(apiStored).toEqual({ rows: apiAccepted.length, distinct: apiAccepted.length });
    expect(outcome.redone, 'events published twice (work redone after a stop)').toEqual({
      secondFactor: 0,
      security: 0,
      session: 0,
    });
    expectNothingLost(outcome, scenario, { extraLogins: apiAccepted.length });
  });
});
