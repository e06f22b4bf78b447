// A consumer killed after its effect but before its commit neither loses nor duplicates
// an audit row when it restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import { createPool, type Pool } from '@twofold/store';
import { REPO_ROOT, eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;

function startSink(extraEnv: Record<string, string>): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=twofold-source', '--import', 'tsx', 'test/support/audit-sink-process.ts'],
    { cwd: REPO_ROOT, env: { ...world.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
}

beforeAll(async () => {
  world = await isolated('audit-crash');
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
});
afterAll(async () => {
  await pool.end();
  await world.cleanup();
});

describe('audit sink crash between effect and commit', () => {
  it('stores every event exactly once after a SIGKILL and a restart', async () => {
    const events = Array.from({ length: 60 }, (_, i) =>
      createEvent('twofold.login.failed', 'app/jira', `crash-user-${i}`, {
        appId: 'jira',
        ip: `198.51.100.${i + 1}`,
        reason: 'bad_password',
      }),
    );
    await world.producer.publish('login', events);
    const ids = events.map((e) => e.id);
    const count = async () => {
      const { rows } = await pool.query<{ n: string; distinct_ids: string }>(
        'SELECT count(*) AS n, count(DISTINCT event_id) AS distinct_ids FROM audit_events WHERE event_id = ANY($1)',
        [ids],
      );
      return { rows: Number(rows[0]!.n), distinct: Number(rows[0]!.distinct_ids) };
    };

    const crashing = startSink({ TEST_CRASH_AFTER_EFFECT: '1' });
    const [, signal] = (await once(crashing, 'exit')) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe('SIGKILL');
    const afterCrash = await count();
    expect(afterCrash.rows).toBeGreaterThan(0); // the effect happened…
    const group = `${world.config.kafka.groupPrefix}audit-sink`;
    expect(await groupLag(world.kafka, group, [world.topics.login])).toBe(events.length); // …the commit did not

    const restarted = startSink({});
    try {
      await eventually(
        async () => ((await count()).rows === events.length ? true : undefined),
        45_000,
        'all rows',
      );
      await eventually(
        async () => ((await groupLag(world.kafka, group, [world.topics.login])) === 0 ? true : undefined),
        30_000,
        'offsets committed',
      );
      expect(await count()).toEqual({ rows: events.length, distinct: events.length });
    } finally {
      restarted.kill('SIGTERM');
      const [code] = (await once(restarted, 'exit')) as [number | null];
      expect(code).toBe(0);
    }
  });
});
