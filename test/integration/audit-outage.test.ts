// Postgres stopped for 30 s while events keep coming: the audit sink waits (retrying the
// batch, not committing offsets), resumes when Postgres is back, and ends with exactly one
// row per event and intact hash chains. The Postgres stopped is a private one started by
// this test (initdb into a temporary folder), never the shared stack's.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, type AnyTwofoldEvent } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import {
  createAuditRepository,
  createPool,
  runMigrations,
  verifyAuditChains,
  type Pool,
} from '@twofold/store';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { freePort } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

/** A throwaway Postgres cluster owned by the postgres OS user, on a free port. */
class PrivatePostgres {
  readonly dir = mkdtempSync('/tmp/twofold-audit-pg-');
  port = 0;
  get url() {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }
  private asPostgres(command: string, args: string[]) {
    return run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/${command}`, ...args], { timeout: 60_000 });
  }
  async init(): Promise<void> {
    chmodSync(this.dir, 0o777);
    this.port = await freePort();
    await this.asPostgres('initdb', [
      '-D',
      `${this.dir}/data`,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
    ]);
  }
  start() {
    return this.asPostgres('pg_ctl', [
      '-D',
      `${this.dir}/data`,
      '-l',
      `${this.dir}/postgres.log`,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=30 -c shared_buffers=32MB`,
      'start',
    ]);
  }
  stop(mode: 'fast' | 'immediate' = 'fast') {
    return this.asPostgres('pg_ctl', ['-D', `${this.dir}/data`, '-m', mode, '-w', '-t', '60', 'stop']);
  }
  log(): string {
    try {
      return readFileSync(`${this.dir}/postgres.log`, 'utf8');
    } catch {
      return '';
    }
  }
  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

let world: Isolated;
let pg: PrivatePostgres;
let pool: Pool;
let sink: ReturnType<typeof buildAuditSink>;

beforeAll(async () => {
  world = await isolated('audit-outage');
  pg = new PrivatePostgres();
  await pg.init();
  await pg.start();
  // No twofold_analyst role in this cluster: the migration's grant must skip, not fail.
  await runMigrations({ databaseUrl: pg.url, schema: 'twofold' });
  pool = createPool({ url: pg.url, schema: 'twofold', max: 8 });
  sink = buildAuditSink({
    kafka: world.kafka,
    producer: world.producer,
    pool,
    audit: createAuditRepository(pool),
    logger: world.logger,
    metrics: world.metrics,
    groupId: `${world.config.kafka.groupPrefix}audit-sink`,
    sessionTimeoutMs: 10_000,
  });
  await sink.start();
}, 180_000);

afterAll(async () => {
  await sink?.stop();
  await pool?.end();
  await pg?.destroy();
  await world?.cleanup();
});

describe('audit sink with Postgres stopped under load', () => {
  it('waits for 30 s, resumes, and ends with exactly N rows', async () => {
    const N = 3_000;
    const events: AnyTwofoldEvent[] = Array.from({ length: N }, (_, i) =>
      createEvent('twofold.login.failed', 'app/jira', `user-${i % 97}`, {
        appId: 'jira',
        ip: `198.51.100.${(i % 250) + 1}`,
        reason: 'bad_password',
      }),
    );
    const group = `${world.config.kafka.groupPrefix}audit-sink`;
    const count = async () =>
      Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events')).rows[0]!.n);

    // About 75 events/s for 40 s; Postgres goes down at 5 s and comes back at 35 s.
    const started = Date.now();
    const producing = (async () => {
      for (let i = 0; i < N; i += 15) {
        await world.producer.publish('login', events.slice(i, i + 15));
        const due = started + ((i + 15) / N) * 40_000;
        await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      }
    })();

    await new Promise((r) => setTimeout(r, 5_000));
    const beforeOutage = await count();
    expect(beforeOutage).toBeGreaterThan(0);
    await pg.stop('fast');
    const stoppedAt = Date.now();

    // While it is down: the sink says so, does not commit, and the backlog grows.
    await eventually(
      async () => ((await sink.readiness()).postgres === false ? true : undefined),
      10_000,
      'readiness to report Postgres down',
    );
    await new Promise((r) => setTimeout(r, 15_000));
    const lagDuringOutage = await groupLag(world.kafka, group, [world.topics.login]);
    expect(lagDuringOutage).toBeGreaterThan(500);
    await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + 30_000 - Date.now())));
    await pg.start();

    await producing;
    await eventually(async () => ((await count()) >= N ? true : undefined), 90_000, `${N} rows`);
    await eventually(
      async () => ((await groupLag(world.kafka, group, [world.topics.login])) === 0 ? true : undefined),
      30_000,
      'offsets committed',
    );
    const { rows } = await pool.query<{ n: string; d: string }>(
      'SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events WHERE event_id = ANY($1)',
      [events.map((e) => e.id)],
    );
    expect({ rows: Number(rows[0]!.n), distinct: Number(rows[0]!.d) }).toEqual({ rows: N, distinct: N });
    expect(await count()).toBe(N);
    const report = await verifyAuditChains(pool);
    expect(report.problems).toEqual([]);
    expect(report.rows).toBe(N);
    expect((await sink.readiness()).postgres).toBe(true);
    expect(pg.log()).toMatch(/shut down|shutting down/);
  }, 240_000);
});
