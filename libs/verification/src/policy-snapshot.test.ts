import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PolicySettings, RuleModeValue } from '@twofold/contracts';
import type { PolicyRepository, PolicyRule } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';
import { DEFAULT_POLICY_MAX_STALENESS_MS, createPolicySnapshot } from './policy-snapshot.js';

const T0 = Date.parse('2026-11-28T09:00:00Z');
const MAX = DEFAULT_POLICY_MAX_STALENESS_MS;

/**
 * A policy held in memory, as Postgres would answer for it: `setUser` changes a rule and
 * moves the version (as the trigger does); `down` makes every read fail, `hang` never answer,
 * `slow(ms)` answer after the clock moved on by ms.
 */
function world() {
  let t = T0;
  let version = 1;
  let mode: 'up' | 'down' | 'hang' = 'up';
  let delayMs = 0;
  let loads = 0;
  const settings: Partial<PolicySettings> = {};
  const users = new Map<string, RuleModeValue>();
  const answer = async <T>(value: () => T): Promise<T> => {
    if (mode === 'hang') return new Promise<T>(() => undefined);
    if (mode === 'down') throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    t += delayMs;
    return value();
  };
  const repository: Pick<PolicyRepository, 'version' | 'load'> = {
    version: () => answer(() => String(version)),
    load: () =>
      answer(() => {
        loads++;
        const rules: PolicyRule[] = [...users].map(([subject, m]) => ({
          kind: 'user',
          subject,
          mode: m,
          updatedAt: new Date(t),
          updatedBy: 'admin',
        }));
        return { version: String(version), settings, rules };
      }),
  };
  const logs: { level: string; msg: string }[] = [];
  const logger = createLogger({
    service: 'test',
    level: 'debug',
    destination: { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) },
  });
  return {
    repository,
    logger,
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
    setUser(name: string, m: RuleModeValue) {
      users.set(name, m);
      version++;
    },
    set: (next: typeof mode) => void (mode = next),
    slow: (ms: number) => void (delayMs = ms),
    loads: () => loads,
    /** Log lines at warn and above, as `level: message`. */
    warnings: () =>
      logs.filter((l) => ['warn', 'error', 'fatal'].includes(l.level)).map((l) => `${l.level}: ${l.msg}`),
  };
}

function snapshotOf(w: ReturnType<typeof world>, maxStalenessMs?: number) {
  return createPolicySnapshot({
    repository: w.repository,
    logger: w.logger,
    now: w.now,
    ...(maxStalenessMs === undefined ? {} : { maxStalenessMs }),
  });
}

const STALE = 'error: policy copy could not be confirmed current in time';
const FAILED = 'warn: policy refresh failed; keeping the last copy';
const AGAIN = 'warn: policy copy current again; deciding by the policy';
const kinds = (lines: string[]) => lines.map((l) => [STALE, FAILED, AGAIN].find((k) => l.startsWith(k)) ?? l);

afterEach(() => {
  vi.useRealTimers();
});

describe('createPolicySnapshot: how stale a copy may be', () => {
  it('knows no policy before the first load, and an infinitely old one', async () => {
    const w = world();
    w.set('down');
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    expect(snapshot.current()).toBeUndefined();
    expect(snapshot.ageMs()).toBe(Infinity);
  });

  it.each([
    ['just loaded', 0, true],
    ['half the bound later', MAX / 2, true],
    ['exactly at the bound', MAX, true],
    ['1 ms past the bound', MAX + 1, false],
    ['an hour later', 3_600_000, false],
  ])('without a refresh since: %s → %s', async (_, elapsed, known) => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.advance(elapsed);
    expect(snapshot.current() !== undefined).toBe(known);
    expect(snapshot.ageMs()).toBe(elapsed);
  });

  it('a version check that finds no change confirms the copy without reloading it', async () => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    for (let i = 0; i < 10; i++) {
      w.advance(MAX - 1);
      await snapshot.reload();
    }
    w.advance(MAX);
    expect(snapshot.current()).toBeDefined();
    expect(w.loads()).toBe(1);
  });

  it('Postgres unreachable: keeps the copy up to the bound, then knows none; recovers on the next refresh', async () => {
    const w = world();
    w.setUser('kim', 'exempt');
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.set('down');
    w.advance(MAX / 2);
    await snapshot.reload();
    expect(snapshot.current()?.userRules.get('kim')).toBe('exempt');
    w.advance(MAX / 2 + 1);
    await snapshot.reload();
    expect(snapshot.current()).toBeUndefined();

    // The admin tightens the policy through a replica that still reaches Postgres.
    w.setUser('kim', 'require');
    w.advance(60_000);
    await snapshot.reload();
    expect(snapshot.current()).toBeUndefined();

    w.set('up');
    await snapshot.reload();
    expect(snapshot.current()?.userRules.get('kim')).toBe('require');
    expect(snapshot.ageMs()).toBe(0);
  });

  it('logs the outage once, going stale once and recovering once, however many ticks fail', async () => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.set('down');
    for (let i = 0; i < 200; i++) {
      w.advance(500);
      await snapshot.reload();
      snapshot.current();
    }
    expect(kinds(w.warnings())).toEqual([FAILED, STALE]);
    w.set('up');
    for (let i = 0; i < 5; i++) {
      w.advance(500);
      await snapshot.reload();
    }
    expect(kinds(w.warnings())).toEqual([FAILED, STALE, AGAIN]);

    // A second outage is logged again, once.
    w.set('down');
    for (let i = 0; i < 200; i++) {
      w.advance(500);
      await snapshot.reload();
    }
    expect(kinds(w.warnings())).toEqual([FAILED, STALE, AGAIN, FAILED, STALE]);
  });

  it('a short outage within the bound never stops decisions and logs no staleness', async () => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.set('down');
    for (let i = 0; i < 10; i++) {
      w.advance(500);
      await snapshot.reload();
      expect(snapshot.current()).toBeDefined();
    }
    w.set('up');
    await snapshot.reload();
    expect(kinds(w.warnings())).toEqual([FAILED]);
  });

  it('a check that hangs does not keep the copy alive: it goes stale by the clock', async () => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.set('hang');
    void snapshot.reload();
    w.advance(MAX + 1);
    expect(snapshot.current()).toBeUndefined();
    expect(snapshot.current()).toBeUndefined();
    expect(kinds(w.warnings())).toEqual([STALE]);
  });

  it('a slow check counts from when it was asked, not from when it answered', async () => {
    const w = world();
    const snapshot = snapshotOf(w);
    await snapshot.reload();
    w.advance(MAX - 1_000);
    w.slow(5_000);
    await snapshot.reload(); // asked at MAX - 1 s, answered at MAX + 4 s
    expect(snapshot.ageMs()).toBe(5_000);
    expect(snapshot.current()).toBeDefined();

    w.slow(MAX + 1);
    await snapshot.reload(); // confirmed, but as of longer ago than the bound
    expect(snapshot.current()).toBeUndefined();
    expect(kinds(w.warnings())).toEqual([STALE]);
  });

  it('takes its bound from maxStalenessMs', async () => {
    const w = world();
    const snapshot = snapshotOf(w, 2_000);
    await snapshot.reload();
    w.advance(2_000);
    expect(snapshot.current()).toBeDefined();
    w.advance(1);
    expect(snapshot.current()).toBeUndefined();
  });

  it('started, its own ticks notice a stale copy while a check hangs (nobody asking)', async () => {
    vi.useFakeTimers();
    const w = world();
    const snapshot = createPolicySnapshot({
      repository: w.repository,
      logger: w.logger,
      now: w.now,
      refreshMs: 500,
    });
    await snapshot.start();
    w.set('hang');
    await vi.advanceTimersByTimeAsync(500);
    w.advance(MAX + 1);
    expect(w.warnings()).toEqual([]);
    await vi.advanceTimersByTimeAsync(500);
    expect(kinds(w.warnings())).toEqual([STALE]);
    // The hung check is given up at its deadline (5 s), once: one line for the outage.
    await vi.advanceTimersByTimeAsync(20_000);
    expect(kinds(w.warnings())).toEqual([STALE, FAILED]);
    snapshot.stop();
  });

  it('gives a hung check up at its deadline, so a later one brings the copy back when Postgres answers', async () => {
    vi.useFakeTimers();
    const w = world();
    const snapshot = createPolicySnapshot({
      repository: w.repository,
      logger: w.logger,
      now: w.now,
      refreshMs: 500,
    });
    await snapshot.start();
    // A connection gone silent: its check never settles; Postgres itself is back soon after.
    w.set('hang');
    await vi.advanceTimersByTimeAsync(500);
    w.advance(MAX + 1);
    w.set('up');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(snapshot.current()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(snapshot.current()).toBeDefined();
    expect(kinds(w.warnings())).toEqual([STALE, FAILED, AGAIN]);
    snapshot.stop();
  });

  it('started, its own ticks bring the copy back once Postgres answers again', async () => {
    vi.useFakeTimers();
    const w = world();
    const snapshot = createPolicySnapshot({
      repository: w.repository,
      logger: w.logger,
      now: w.now,
      refreshMs: 500,
    });
    await snapshot.start();
    w.set('down');
    w.advance(MAX + 1);
    await vi.advanceTimersByTimeAsync(500);
    expect(snapshot.current()).toBeUndefined();
    w.set('up');
    await vi.advanceTimersByTimeAsync(500);
    expect(snapshot.current()).toBeDefined();
    // The tick saw the copy stale before its refresh failed.
    expect(kinds(w.warnings())).toEqual([STALE, FAILED, AGAIN]);
    snapshot.stop();
  });
});
