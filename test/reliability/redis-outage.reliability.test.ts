// Redis stopped in the middle of the load (issue 9), with every service running: a private
// redis-server (support/private-redis.ts, appending every write to disk so a restart keeps
// the state), never the shared stack's. While it is down decisions fail closed: logins
// published after it stopped — IdP logins that would skip, and logins on sessions verified
// before — are all decided `challenge/state_unavailable`; the api never says skip. When it
// returns everything recovers by itself: nothing lost, nothing counted twice, the lockouts
// and verified sessions as without the outage. (test/integration/verifier-redis-down.test.ts
// covers codes and the api's answers in detail, without load.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent } from '@twofold/contracts';
import { apiClient } from '../support/services.js';
import { eventually } from '../support/stack.js';
import { expectNothingLost, lags, loadScenario, print, recoveredUnaided } from './support/checks.js';
import { runUnderLoad, summary } from './support/load-run.js';
import { PrivateRedis } from './support/private-redis.js';

const OUTAGE_MS = 10_000;
const { scenario, rate, seconds } = loadScenario('rd');
const redis = new PrivateRedis({ persist: true });

beforeAll(() => redis.start());
afterAll(() => redis.destroy());

/** Logins that would skip the second factor if Redis could be read: IdP logins and logins on sessions verified early in the scenario. */
function wouldSkip(n: number): AnyTwofoldEvent[] {
  return Array.from({ length: n }, (_, i) =>
    i % 2 === 0
      ? createEvent('twofold.login.succeeded', 'app/jira', `outage-idp-${i}`, {
          appId: 'jira',
          session: hashSessionToken(`outage-idp-${i}`),
          method: 'sso',
          ip: '203.0.113.9',
        })
      : createEvent('twofold.login.succeeded', 'app/jira', `member-rd-${i % 40}`, {
          appId: 'jira',
          session: hashSessionToken(`sso-rd-${i % 40}`),
          method: 'password',
          ip: '203.0.113.6',
        }),
  );
}

describe('Redis stopped under load', () => {
  it('fails closed while it is down, skips nothing, and recovers when it returns', async () => {
    const probes = wouldSkip(40);
    const api: { status: number; decision?: string; reason?: string }[] = [];
    let readyDuring = 0;
    const outcome = await runUnderLoad('redis-outage', {
      scenario,
      rate,
      env: { REDIS_URL: redis.url },
      faults: [
        {
          atSecond: seconds / 3,
          async run({ world, services, jiraKey }) {
            await redis.stop();
            const stopped = Date.now();
            await world.producer.publish('login', probes);
            // An app asking the api and waiting for the decision.
            const jira = apiClient(services.get('api')!.url, jiraKey);
            for (const probe of wouldSkip(4)) {
              const res = await jira<{ decision?: string; reason?: string }>(
                'POST',
                '/v1/login-events?wait=decision&timeoutMs=3000',
                { type: probe.type, id: probe.id, subject: probe.subject, data: probe.data },
              );
              api.push({ status: res.status, decision: res.body.decision, reason: res.body.reason });
              probes.push(probe);
            }
            for (const service of services.values())
              if (
                (await fetch(`${service.url}/readyz`).then(
                  (r) => r.status,
                  () => 0,
                )) === 200
              )
                readyDuring++;
            // Redis stays down until the verifier has decided every login published so far.
            await eventually(
              async () => ((await lags(world))['verifier'] === 0 ? true : undefined),
              120_000,
              'the verifier to decide the logins published during the outage',
            );
            await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stopped))));
            await redis.start();
            return { downMs: Date.now() - stopped };
          },
        },
      ],
      // Nobody restarted a service: each recovers by itself.
      afterLoad: recoveredUnaided,
      async inspect(_ctx, pool) {
        const { rows } = await pool.query<{ decision: string; reason: string; n: string }>(
          `SELECT event->'data'->>'decision' AS decision, event->'data'->>'reason' AS reason, count(*) AS n
             FROM audit_events WHERE type = 'twofold.2fa.decided' AND event->'data'->>'loginEventId' = ANY($1)
            GROUP BY 1, 2`,
          [probes.map((p) => p.id)],
        );
        return Object.fromEntries(rows.map((r) => [`${r.decision}/${r.reason}`, Number(r.n)]));
      },
    });
    const probeDecisions = outcome.inspected as Record<string, number>;
    print('redis outage', {
      events: scenario.events.length,
      rate,
      outage: outcome.faults[0],
      probes: probes.length,
      probeDecisions,
      apiAnswersDuringOutage: api,
      servicesReadyDuringOutage: readyDuring,
      ...summary(outcome),
    });
    // Every login published while Redis was down: decided, once, and challenged.
    expect(probeDecisions).toEqual({ 'challenge/state_unavailable': probes.length });
    for (const answer of api) {
      expect(answer.status, 'the api answers, never with a 5xx').toBeLessThan(500);
      expect(answer.decision).not.toBe('skip');
    }
    expectNothingLost(outcome, scenario, { extraLogins: probes.length });
  });
});
