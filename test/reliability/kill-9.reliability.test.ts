// kill -9 each service in turn while events flow, then start it again (issue 9). Compared
// with the same events (same ids) run through a world without faults:
// - every event produced is stored once, every successful login decided once;
// - the lockouts imposed are the same;
// - no session is verified that was not (and every verified one is).
// A SIGKILL leaves no chance to finish a batch or commit: the restarted consumer gets the
// uncommitted batch again ("redone" counts the events published twice because of it), and
// every effect has to be idempotent by event id.
import { describe, expect, it } from 'vitest';
import { expectNothingLost, loadScenario, print } from './support/checks.js';
import { ALL_SERVICES, runUnderLoad, summary, type Fault } from './support/load-run.js';
import type { ServiceProcess } from './support/service-process.js';

const { scenario, rate, seconds } = loadScenario('k9');

const killAndRestart = (name: (typeof ALL_SERVICES)[number], atSecond: number): Fault => ({
  atSecond,
  async run({ services }) {
    const service: ServiceProcess = services.get(name)!;
    const exit = await service.kill('SIGKILL');
    const started = Date.now();
    await service.start();
    return { service: name, signal: exit.signal, readyAgainMs: Date.now() - started };
  },
});

describe('kill -9 each service in turn under load', () => {
  it('stores every event once, imposes the same lockouts as a run without faults, verifies no session it should not', async () => {
    const clean = await runUnderLoad('k9-clean', { scenario, rate });
    // One kill every `gap` seconds through the middle of the load, each service in turn.
    const gap = seconds / (ALL_SERVICES.length + 1);
    const faulty = await runUnderLoad('k9-faulty', {
      scenario,
      rate,
      faults: ALL_SERVICES.map((name, i) => killAndRestart(name, gap * (i + 1))),
    });
    print('kill -9', {
      events: scenario.events.length,
      rate,
      clean: summary(clean),
      faulty: summary(faulty),
      kills: faulty.faults,
    });

    const kills = faulty.faults as { service: string; signal: string }[];
    expect(kills.map((k) => k.service)).toEqual([...ALL_SERVICES]);
    expect(kills.every((k) => k.signal === 'SIGKILL')).toBe(true);
    expectNothingLost(clean, scenario);
    expectNothingLost(faulty, scenario);
    expect(faulty.stored.lockouts).toEqual(clean.stored.lockouts);
    expect(faulty.stored.decisions).toBe(clean.stored.decisions);
  });
});
