// Tamper evidence: rows written by the real sink form hash chains; `audit verify` names
// the first broken row of an edited row, a deleted row, a swapped pair, a cut-off tail and
// a row slipped in around the sink.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import { createAuditRepository, createPool, type Pool } from '@twofold/store';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';
import { main, verifyAuditChain } from '../../tools/cli/audit-verify.js';
import { REPO_ROOT, eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;
let sink: ReturnType<typeof buildAuditSink>;
const noon = new Date(`${new Date().toISOString().slice(0, 10)}T12:00:00.000Z`);
const ids: Partial<Record<TopicRole, string[]>> = {};

/** 40 events on one topic under one key: one partition, one chain, seq 1..40 in this order. */
function chainOf(role: TopicRole): AnyTwofoldEvent[] {
  const s = hashSessionToken(randomUUID());
  const t = { time: noon };
  return Array.from({ length: 40 }, (_, i): AnyTwofoldEvent => {
    switch (role) {
      case 'login':
        return createEvent(
          'twofold.login.failed',
          'app/jira',
          'edit-me',
          { appId: 'jira', ip: `192.0.2.${i + 1}`, reason: 'bad_password' },
          t,
        );
      case 'secondFactor':
        return createEvent(
          'twofold.2fa.failed',
          'service/api',
          'delete-me',
          { appId: 'jira', session: s, ip: '192.0.2.1', reason: 'bad_code' },
          t,
        );
      case 'security':
        return createEvent(
          'twofold.lockout.imposed',
          'service/lockout-detector',
          'swap-me',
          { scope: 'user', key: 'swap-me', until: null, failures: i, rule: 'user' },
          t,
        );
      case 'session':
        return createEvent(
          'twofold.session.revoked',
          'service/session-broadcaster',
          'cut-me',
          { session: s, reason: 'logout' },
          t,
        );
      default:
        return createEvent(
          'twofold.admin.policy_updated',
          'service/api',
          'admin',
          { actor: 'admin', n: i },
          t,
        );
    }
  });
}

const seqOf = async (topic: string, eventId: string) =>
  (
    await pool.query<{ seq: string }>(
      'SELECT seq FROM audit_events WHERE kafka_topic = $1 AND event_id = $2',
      [topic, eventId],
    )
  ).rows[0]?.seq;

async function runCli(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=twofold-source', '--import', 'tsx', 'tools/cli/audit-verify.ts', ...args],
    {
      cwd: REPO_ROOT,
      env: {
        ...world.env,
        DATABASE_URL: world.config.database.url,
        DATABASE_SCHEMA: world.config.database.schema,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout };
}

beforeAll(async () => {
  world = await isolated('audit-verify', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 4 });
  sink = buildAuditSink({
    kafka: world.kafka,
    producer: world.producer,
    pool,
    audit: createAuditRepository(pool),
    logger: world.logger,
    metrics: world.metrics,
    groupId: `${world.config.kafka.groupPrefix}audit-sink`,
    sessionTimeoutMs: 6_000,
  });
  await sink.start();
  const roles: TopicRole[] = ['login', 'secondFactor', 'security', 'session', 'admin'];
  for (const role of roles) {
    const events = chainOf(role);
    ids[role] = events.map((e) => e.id);
    await world.producer.publish(role, events);
  }
  await eventually(
    async () => {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
      return Number(rows[0]!.n) === 200 ? true : undefined;
    },
    60_000,
    '200 rows',
  );
  await sink.stop();
});

afterAll(async () => {
  await sink?.stop();
  await pool?.end();
  await world?.cleanup();
});

describe('audit verify', () => {
  it('finds an untouched trail intact', async () => {
    const report = await verifyAuditChain({ pool });
    expect(report).toMatchObject({ ok: true, chains: 5, rows: 200, problems: [] });
    // Each chain is one topic's events, in publishing order.
    expect(await seqOf(world.topics.login, ids.login![0]!)).toBe('1');
    expect(await seqOf(world.topics.login, ids.login![39]!)).toBe('40');
    const cli = await runCli([]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('audit trail intact: 200 rows in 5 chains');
  });

  it('names the first broken row of an edited row, a deleted row, a swapped pair, a cut tail and a forged row', async () => {
    const t = world.topics;
    // Edited: one column of row 10.
    await pool.query(`UPDATE audit_events SET reason = 'typo' WHERE kafka_topic = $1 AND seq = 10`, [
      t.login,
    ]);
    // Deleted: row 20.
    await pool.query('DELETE FROM audit_events WHERE kafka_topic = $1 AND seq = 20', [t.secondFactor]);
    // Swapped: rows 30 and 31 trade places.
    await pool.query(
      'UPDATE audit_events SET seq = CASE seq WHEN 30 THEN 31 ELSE 30 END WHERE kafka_topic = $1 AND seq IN (30, 31)',
      [t.security],
    );
    // Cut: the last row.
    await pool.query('DELETE FROM audit_events WHERE kafka_topic = $1 AND seq = 40', [t.session]);
    // Forged: a row inserted around the sink, with no chain.
    const forged = randomUUID();
    await pool.query(
      `INSERT INTO audit_events (event_id, occurred_at, type, source, username, kafka_topic, kafka_partition, kafka_offset, event)
       VALUES ($1, $2, 'twofold.admin.policy_updated', 'service/api', 'admin', $3, 0, 999, '{}')`,
      [forged, noon.toISOString(), t.admin],
    );

    const report = await verifyAuditChain({ pool });
    expect(report.ok).toBe(false);
    const byTopic = Object.fromEntries(report.problems.map((p) => [`${p.kind}:${p.kafkaTopic}`, p]));
    expect(byTopic[`edited:${t.login}`]).toMatchObject({ seq: '10', eventId: ids.login![9] });
    expect(byTopic[`missing:${t.secondFactor}`]).toMatchObject({ seq: '21', eventId: ids.secondFactor![20] });
    expect(byTopic[`missing:${t.secondFactor}`]!.detail).toContain('row 20 of the chain are missing');
    // Row 31 now sits at 30: it does not follow row 29.
    expect(byTopic[`relinked:${t.security}`]).toMatchObject({ seq: '30', eventId: ids.security![30] });
    expect(byTopic[`truncated:${t.session}`]).toMatchObject({ seq: '40' });
    expect(byTopic[`unchained:${t.admin}`]).toMatchObject({ eventId: forged });
    expect(report.problems).toHaveLength(5);

    // The command says the same and exits 1; --topic narrows it to one chain.
    const lines: string[] = [];
    expect(
      await main(
        [],
        { DATABASE_URL: world.config.database.url, DATABASE_SCHEMA: world.config.database.schema },
        (s) => lines.push(s),
      ),
    ).toBe(1);
    expect(lines.join('\n')).toContain(`audit trail BROKEN: 5 problem(s)`);
    expect(lines.join('\n')).toContain(`#10 event ${ids.login![9]}`);
    const cli = await runCli(['--topic', t.security, '--json']);
    expect(cli.code).toBe(1);
    const json = JSON.parse(cli.stdout) as { problems: { kind: string; eventId: string }[] };
    expect(json.problems).toEqual([
      expect.objectContaining({ kind: 'relinked', eventId: ids.security![30] }),
    ]);
  });

  it('refuses bad arguments with exit code 2', async () => {
    const errors: string[] = [];
    expect(
      await main(
        ['--from', 'yesterday'],
        {},
        () => undefined,
        (s) => errors.push(s),
      ),
    ).toBe(2);
    expect(errors.join('')).toContain('--from must be a day');
    expect(
      await main(
        [],
        {},
        () => undefined,
        (s) => errors.push(s),
      ),
    ).toBe(2);
    expect(errors.join('')).toContain('DATABASE_URL is required');
  });
});
