import { afterEach, describe, expect, it, vi } from 'vitest';
import type { StoredPolicy } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';
import { createSessionLifetime } from './session-lifetime.js';

const logger = createLogger({ service: 'test', level: 'silent' });

/** A policy table in memory: version bumps on every save, as the trigger does. */
function policies(settings: StoredPolicy['settings'] = {}) {
  let version = 1;
  let current = settings;
  let down = false;
  let hang = false;
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
    /** A connection gone silent: the version check never answers. */
    set hang(value: boolean) {
      hang = value;
    },
    async version() {
      if (hang) return new Promise<string>(() => undefined);
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
  afterEach(() => vi.useRealTimers());

  it('gives a hung check up at its deadline, so a later one applies a change once Postgres answers', async () => {
    vi.useFakeTimers();
    const repo = policies({ sessionTtlSeconds: 900 });
    const lifetime = createSessionLifetime({
      policies: repo,
      fallbackSeconds: 3_600,
      logger,
      refreshMs: 500,
    });
    await lifetime.start();
    repo.hang = true;
    await vi.advanceTimersByTimeAsync(500);
    repo.hang = false;
    repo.save({ sessionTtlSeconds: 600 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect(lifetime.seconds()).toBe(900); // still waiting on the hung check
    await vi.advanceTimersByTimeAsync(5_000);
    expect(lifetime.seconds()).toBe(600);
    lifetime.stop();
  });

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
