// kill -9 each service in turn while events flow, then start it again (issue 9). Compared
// with the same events (same ids) run through a world without faults:
// - every event produced is stored once, every successful login decided once;
// - the lockouts imposed are the same;
// - no session is verified that was not (and every verified one is).
// Each consumer is frozen for a moment first so that the kill lands while it works through
// a backlog. A SIGKILL leaves no chance to finish a batch or commit: the restarted consumer
// gets the uncommitted batch again ("redone" counts the events published twice because of
// it), and every effect has to be idempotent by event id.
import { describe, expect, it } from 'vitest';
import { createPool } from '@twofold/store';
import { auditCommitted, expectNothingLost, lags, loadScenario, print } from './support/checks.js';
import { ALL_SERVICES, runUnderLoad, summary, type Fault } from './support/load-run.js';
import type { ServiceProcess } from './support/service-process.js';

// A minute of load, so each service is killed while events flow, one after the other.
const { scenario, rate, seconds } = loadScenario('k9', { seconds: 60 });
const gap = seconds / (ALL_SERVICES.length + 1);

interface Kill {
  service: string;
  signal: string | null;
  /** Seconds into the load when the kill landed, and until the service was ready again. */
  atSecond: number;
  readyAgainMs: number;
  /** Messages its consumer group had not committed when it was killed. */
  lagAtKill?: number;
  /** Audit sink only: rows it had stored past its committed offsets (killed between the
   * effect and the commit, so the restart redelivers them; the insert absorbs it). */
  storedPastCommit?: number;
}

/**
 * Kills each service in turn, every `gap` seconds from the first (or as soon as the one
 * before is ready again, if later), and starts it again.
 */
const killEachInTurn: Fault = {
  atSecond: gap,
  async run({ services, world }) {
    const first = Date.now();
    const kills: Kill[] = [];
    for (const [i, name] of ALL_SERVICES.entries()) {
      await new Promise((r) => setTimeout(r, Math.max(0, first + i * gap * 1000 - Date.now())));
      const service: ServiceProcess = services.get(name)!;
      const atSecond = Math.round(gap + (Date.now() - first) / 1000);
      if (name !== 'api') {
        // Frozen for 2 s, a backlog builds; 300 ms after it thaws the consumer is in the
        // middle of it (handling a batch, or done with one it has not committed yet).
        service.child!.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 2_000));
        service.child!.kill('SIGCONT');
        await new Promise((r) => setTimeout(r, 300));
      }
      const exit = await service.kill('SIGKILL');
      const lagAtKill = name === 'api' ? undefined : (await lags(world))[name];
      let storedPastCommit: number | undefined;
      if (name === 'audit-sink') {
        const pool = createPool({
          url: world.config.database.url,
          schema: world.config.database.schema,
          max: 1,
        });
        storedPastCommit = (await auditCommitted(world, pool).finally(() => pool.end())).storedAbove;
      }
      const started = Date.now();
      await service.start();
      kills.push({
        service: name,
        signal: exit.signal,
        atSecond,
        readyAgainMs: Date.now() - started,
        lagAtKill,
        storedPastCommit,
      });
    }
    return kills;
  },
};

describe('kill -9 each service in turn under load', () => {
  it('stores every event once, imposes the same lockouts as a run without faults, verifies no session it should not', async () => {
    const clean = await runUnderLoad('k9-clean', { scenario, rate });
    const faulty = await runUnderLoad('k9-faulty', { scenario, rate, faults: [killEachInTurn] });
    print('kill -9', {
      events: scenario.events.length,
      rate,
      clean: summary(clean),
      faulty: summary(faulty),
      kills: faulty.faults[0],
    });

    const kills = faulty.faults[0] as Kill[];
    expect(kills.map((k) => k.service)).toEqual([...ALL_SERVICES]);
    expect(kills.every((k) => k.signal === 'SIGKILL')).toBe(true);
    expectNothingLost(clean, scenario);
    expectNothingLost(faulty, scenario);
    expect(faulty.stored.lockouts).toEqual(clean.stored.lockouts);
    expect(faulty.stored.decisions).toBe(clean.stored.decisions);
  });
});
