// Postgres stopped for 30 s in the middle of the load (issue 9): a private cluster
// (support/private-postgres.ts), never the shared stack's, used by every service. The audit
// sink waits (retrying its batch, not committing) and catches up when Postgres is back:
// every event stored once, every login decided once, the lockouts and sessions as without
// the outage, and no service restarted by anyone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNothingLost, lags, loadScenario, print, recoveredUnaided } from './support/checks.js';
import { runUnderLoad, summary } from './support/load-run.js';
import { PrivatePostgres } from './support/private-postgres.js';

const OUTAGE_MS = 30_000;
// The load outlasts the outage: about 10 s before, 30 s during, 10 s after.
const { scenario, rate } = loadScenario('pg', { seconds: 50 });
const postgres = new PrivatePostgres();

beforeAll(async () => {
  await postgres.create();
});
afterAll(() => postgres.destroy());

describe('Postgres stopped for 30 s under load', () => {
  it('the audit sink waits and catches up with nothing lost', async () => {
    let lagDuring = 0;
    const outcome = await runUnderLoad('pg-outage', {
      scenario,
      rate,
      env: { DATABASE_URL: postgres.url },
      faults: [
        {
          atSecond: 10,
          async run({ world }) {
            await postgres.stop('fast');
            const stopped = Date.now();
            await new Promise((r) => setTimeout(r, OUTAGE_MS - 5_000));
            // Nothing can be stored while it is down: the sink's group falls behind.
            lagDuring = (await lags(world))['audit-sink']!;
            await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stopped))));
            await postgres.start();
            return { downMs: Date.now() - stopped };
          },
        },
      ],
      // Nobody restarted a service: each recovers by itself.
      afterLoad: recoveredUnaided,
    });
    print('postgres outage', {
      events: scenario.events.length,
      rate,
      outage: outcome.faults[0],
      auditLagDuringOutage: lagDuring,
      ...summary(outcome),
    });
    expect(lagDuring, 'audit sink behind while Postgres is down').toBeGreaterThan(0);
    expectNothingLost(outcome, scenario);
  });
});
