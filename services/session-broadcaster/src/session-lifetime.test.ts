import { describe, expect, it } from 'vitest';
import type { StoredPolicy } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';
import { createSessionLifetime } from './session-lifetime.js';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A policy table in memory: version bumps on every save, as the trigger does. */
function policies(settings: StoredPolicy['settings'] = {}) {
  let version = 1;
  let current = settings;
  let down = false;
  const loads: string[] = [];
  return {
    loads,
    save(next: StoredPolicy['settings']) {
      current = next;
      version++;
    },
    set down(value: boolean) {
      down = value;
    },
    async version() {
      if (down) throw new Error('postgres down');
      return String(version);
    },
    async load(): Promise<StoredPolicy> {
      if (down) throw new Error('postgres down');
      loads.push(String(version));
      return { version: String(version), settings: current, rules: [] };
    },
  };
}

describe('createSessionLifetime', () => {
  it('uses the fallback until the policy names a lifetime, then the policy’s', async () => {
    const repo = policies();
    const lifetime = createSessionLifetime({ policies: repo, fallbackSeconds: 3_600, logger });
    expect(lifetime.seconds()).toBe(3_600); // before the first read
    await lifetime.start();
    expect(lifetime.seconds()).toBe(3_600);
    repo.save({ sessionTtlSeconds: 600 });
    await lifetime.reload();
    expect(lifetime.seconds()).toBe(600);
    lifetime.stop();
  });

  it('reloads only when the version moved', async () => {
    const repo = policies({ sessionTtlSeconds: 900 });
    const lifetime = createSessionLifetime({ policies: repo, fallbackSeconds: 3_600, logger });
    await lifetime.start();
    await lifetime.reload();
    await lifetime.reload();
    expect(repo.loads).toEqual(['1']);
    expect(lifetime.seconds()).toBe(900);
    lifetime.stop();
  });

  it('ignores an unusable stored lifetime, and keeps the last one while Postgres is down', async () => {
    const repo = policies({ sessionTtlSeconds: 1_200 });
    const lifetime = createSessionLifetime({ policies: repo, fallbackSeconds: 3_600, logger });
    await lifetime.start();
    repo.down = true;
    await lifetime.reload();
    expect(lifetime.seconds()).toBe(1_200);
    repo.down = false;
    repo.save({ sessionTtlSeconds: 5 });
    await lifetime.reload();
    expect(lifetime.seconds()).toBe(3_600);
    lifetime.stop();
  });
});
