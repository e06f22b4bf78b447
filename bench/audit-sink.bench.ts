// The audit sink's throughput into Postgres, and its lag under a steady 10,000 events/s.
//
// The sink runs as deployed: its real main.ts, in its own process, against an isolated
// world of the local stack (own topics with the production partition count, own consumer
// group, own Postgres schema, own Redis prefix). This process produces the load.
//
//  1. Backlog: N events (a realistic mix of login, second-factor and security events) are
//     produced before the sink starts; rows/s = N / (time from the first row stored to
//     the last), read from the sink's own twofold_audit_rows_total counter.
//  2. Steady load: 10,000 events/s for a while; lag = received_at − occurred_at of every row
//     (the event's time is stamped when produced; received_at when the sink wrote the
//     batch), and the consumer group's lag in messages, sampled every second.
//  3. Postgres alone: the repository's chained inserts without Kafka, and the CPU time the
//     sink process and the Postgres backends spend per row (less sensitive than rates to
//     what else runs on the machine: capacity ≈ cores / (sink + Postgres + broker CPU per row)).
//
// Run: `node --conditions=twofold-source --import tsx bench/audit-sink.bench.ts [--quick]`.
// BENCH_AUDIT_EVENTS (backlog size), BENCH_AUDIT_RATE (default 10000), BENCH_AUDIT_SECONDS,
// BENCH_AUDIT_DIRECT_ROWS (phase 3; 0 skips it), BENCH_CPU_PROFILE=<dir> (a CPU profile of
// the sink process, summarized).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadCommonConfig } from '@twofold/config';
import {
  DEFAULT_PARTITIONS,
  createEvent,
  hashSessionToken,
  topicCatalog,
  type AnyTwofoldEvent,
  type TopicRole,
} from '@twofold/contracts';
import { createEventProducer, createKafka, deleteTopics, ensureTopics, groupLag } from '@twofold/kafka';
import { createAuditRepository, createPool, quoteIdent, runMigrations, type AuditRow } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';
import { REPO_ROOT, stackEnv } from '../test/support/stack.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { findings } from './lib/findings.js';
import { serviceArgs } from './lib/services.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A mix close to production: mostly logins and decisions, some failures and security events. */
function makeEvent(i: number, time: Date): { role: TopicRole; event: AnyTwofoldEvent } {
  const user = `user-${i % 20_000}`;
  const session = hashSessionToken(`s-${i >> 2}`);
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const options = { time };
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
      return {
        role: 'login',
        event: createEvent(
          'twofold.login.succeeded',
          'app/jira',
          user,
          { appId: 'jira', session, method: 'password', ip, groups: ['staff'] },
          options,
        ),
      };
    case 3:
    case 4:
    case 5:
      return {
        role: 'secondFactor',
        event: createEvent(
          'twofold.2fa.decided',
          'service/verifier',
          user,
          {
            loginEventId: randomUUID(),
            appId: 'jira',
            session,
            decision: 'skip',
            reason: 'session_verified',
          },
          options,
        ),
      };
    case 6:
    case 7:
      return {
        role: 'login',
        event: createEvent(
          'twofold.login.failed',
          'app/confluence',
          user,
          {
            appId: 'confluence',
            ip,
            reason: 'bad_password',
            userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0',
          },
          options,
        ),
      };
    case 8:
      return {
        role: 'secondFactor',
        event: createEvent(
          'twofold.2fa.verified',
          'service/api',
          user,
          { appId: 'jira', session, method: 'totp' },
          options,
        ),
      };
    default:
      return {
        role: 'security',
        event: createEvent(
          'twofold.lockout.imposed',
          'service/lockout-detector',
          user,
          { scope: 'user', key: user, until: null, failures: 10, rule: 'user' },
          options,
        ),
      };
  }
}

/** CPU time (user + system) a process has used, in ms; NaN where /proc is not there. */
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
  } catch {
    return 100;
  }
})();
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return Number.NaN;
  }
}

function rowOf(i: number, partition: number): AuditRow {
  const { role, event } = makeEvent(i, new Date());
  const data = event.data as Record<string, unknown>;
  return {
    eventId: event.id,
    occurredAt: new Date(event.time),
    type: event.type,
    source: event.source,
    appId: (data['appId'] as string | undefined) ?? null,
    username: event.subject,
    session: (data['session'] as string | undefined) ?? null,
    ip: (data['ip'] as string | undefined) ?? null,
    outcome: 'success',
    decision: (data['decision'] as string | undefined) ?? null,
    reason: (data['reason'] as string | undefined) ?? null,
    kafkaTopic: `direct.${role}`,
    kafkaPartition: partition,
    kafkaOffset: String(i),
    event,
  };
}

/**
 * Postgres alone: the repository's chained inserts (batches of 1,000 on 4 connections, no
 * Kafka), and the CPU the Postgres backends spent per row.
 */
async function directInsert(url: string, schema: string, rows: number) {
  const applicationName = `bench-audit-direct-${randomUUID().slice(0, 8)}`;
  const pool = createPool({ url, schema, max: 4, applicationName });
  try {
    const audit = createAuditRepository(pool);
    await Promise.all(
      [0, 1, 2, 3].map((p) => audit.insertMany(Array.from({ length: 50 }, (_, k) => rowOf(k, p)))),
    );
    const { rows: backends } = await pool.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    const cpuBefore = backends.reduce((sum, b) => sum + cpuMs(b.pid), 0);
    const started = Date.now();
    let next = 0;
    await Promise.all(
      [0, 1, 2, 3].map(async (p) => {
        while (next < rows) {
          const from = next;
          next += 1_000;
          await audit.insertMany(Array.from({ length: 1_000 }, (_, k) => rowOf(1_000 + from + k, p)));
        }
      }),
    );
    const ms = Date.now() - started;
    const cpuAfter = backends.reduce((sum, b) => sum + cpuMs(b.pid), 0);
    return { rowsPerS: rows / (ms / 1000), pgCpuUsPerRow: ((cpuAfter - cpuBefore) * 1000) / rows };
  } finally {
    await pool.end();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs the benchmark; figures in rows/s, ms and messages. */
export async function runAuditSinkBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const backlog = Number(process.env['BENCH_AUDIT_EVENTS'] ?? (opts.quick ? 30_000 : 200_000));
  const rate = Number(process.env['BENCH_AUDIT_RATE'] ?? 10_000);
  const seconds = Number(process.env['BENCH_AUDIT_SECONDS'] ?? (opts.quick ? 15 : 60));
  const directRows = Number(process.env['BENCH_AUDIT_DIRECT_ROWS'] ?? (opts.quick ? 20_000 : 100_000));
  const profileDir = process.env['BENCH_CPU_PROFILE']
    ? mkdtempSync(join(process.env['BENCH_CPU_PROFILE'], 'audit-sink-'))
    : undefined;

  const id = `bench-audit-${randomUUID().slice(0, 8)}`;
  const env: Record<string, string> = {
    ...stackEnv(),
    TWOFOLD_TOPIC_PREFIX: `b.${id}.`,
    TWOFOLD_GROUP_PREFIX: `b.${id}.`,
    REDIS_KEY_PREFIX: `b:${id}:`,
    DATABASE_SCHEMA: `b_${id.replaceAll('-', '_')}`,
    LOG_LEVEL: 'warn',
  };
  const config = loadCommonConfig('bench', env);
  const logger = createLogger({ service: 'bench-audit', level: 'warn' });
  const topics = topicCatalog(config.kafka.topicPrefix);
  const kafka = createKafka({ ...config.kafka, clientId: id, logger });
  await ensureTopics(kafka, topics, { partitions: DEFAULT_PARTITIONS });
  await runMigrations({ databaseUrl: config.database.url, schema: config.database.schema });
  const producer = createEventProducer(kafka, { topics, logger });
  await producer.connect();
  const pool = createPool({ url: config.database.url, schema: config.database.schema, max: 2 });
  const group = `${config.kafka.groupPrefix}twofold-audit-sink`;
  const consumed = [
    topics.login,
    topics.secondFactor,
    topics.security,
    topics.session,
    topics.admin,
    topics.dlq,
  ];
  let sink: ChildProcess | undefined;
  const stopSink = async () => {
    if (!sink || sink.exitCode !== null || sink.signalCode !== null) return;
    const exited = new Promise((r) => sink!.once('exit', r));
    sink.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    if (sink.exitCode === null && sink.signalCode === null) sink.kill('SIGKILL');
  };

  const publish = async (items: readonly { role: TopicRole; event: AnyTwofoldEvent }[]) => {
    const byRole = new Map<TopicRole, AnyTwofoldEvent[]>();
    for (const { role, event } of items) {
      const list = byRole.get(role);
      if (list) list.push(event);
      else byRole.set(role, [event]);
    }
    await producer.publishMany([...byRole].map(([role, events]) => ({ role, events })));
  };

  try {
    // 1. Backlog.
    const produceStarted = Date.now();
    for (let i = 0; i < backlog; i += 2_000) {
      const time = new Date();
      await publish(Array.from({ length: Math.min(2_000, backlog - i) }, (_, k) => makeEvent(i + k, time)));
    }
    const produceMs = Date.now() - produceStarted;

    const metricsPort = await freePort();
    sink = spawn(
      process.execPath,
      [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...serviceArgs('audit-sink')],
      {
        cwd: REPO_ROOT,
        env: { ...env, METRICS_PORT: String(metricsPort) },
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const inserted = async (): Promise<number> => {
      try {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        const line = /^twofold_audit_rows_total\{[^}]*outcome="inserted"[^}]*\} (\d+)/m.exec(text);
        return line ? Number(line[1]) : 0;
      } catch {
        return 0;
      }
    };
    let firstAt = 0;
    let doneAt = 0;
    let sinkCpuAtFirst = 0;
    const deadline = Date.now() + Math.max(120_000, backlog * 2);
    while (Date.now() < deadline) {
      if (sink.exitCode !== null) throw new Error(`the audit sink exited with ${sink.exitCode}`);
      const n = await inserted();
      if (n > 0 && firstAt === 0) {
        firstAt = Date.now();
        sinkCpuAtFirst = cpuMs(sink.pid!);
      }
      if (n >= backlog) {
        doneAt = Date.now();
        break;
      }
      await sleep(100);
    }
    if (doneAt === 0) throw new Error('the sink did not store the backlog in time');
    const backlogRowsPerS = backlog / ((doneAt - firstAt) / 1000);
    const sinkCpuUsPerRow = ((cpuMs(sink.pid!) - sinkCpuAtFirst) * 1000) / backlog;

    // 2. Steady load at `rate` events/s, in ticks of 50 ms.
    const tickMs = 50;
    const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
    const steadyStarted = Date.now();
    const steadyFrom = new Date(steadyStarted);
    let sent = 0;
    let maxGroupLag = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxGroupLag = Math.max(maxGroupLag, await groupLag(kafka, group, consumed).catch(() => 0));
        await sleep(1_000);
      }
    })();
    for (let tick = 0; Date.now() < steadyStarted + seconds * 1_000; tick++) {
      const due = steadyStarted + tick * tickMs;
      if (Date.now() < due) await sleep(due - Date.now());
      const time = new Date();
      await publish(Array.from({ length: perTick }, (_, k) => makeEvent(backlog + sent + k, time)));
      sent += perTick;
    }
    const steadyEnded = Date.now();
    const achievedRate = sent / ((steadyEnded - steadyStarted) / 1000);
    const target = backlog + sent;
    while ((await inserted()) < target && Date.now() < steadyEnded + 300_000) await sleep(100);
    const caughtUpMs = Date.now() - steadyEnded;
    sampling = false;
    await sampler;

    const { rows } = await pool.query<{ ms: number }>(
      `SELECT (extract(epoch FROM received_at - occurred_at) * 1000)::float8 AS ms
         FROM audit_events WHERE occurred_at >= $1 ORDER BY 1`,
      [steadyFrom.toISOString()],
    );
    const lags = rows.map((r) => r.ms);
    const { rows: count } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');

    // 3. Postgres alone, the sink stopped.
    await stopSink();
    if (profileDir) {
      // Node names a profile CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is
      // the sink's main thread; the others are tsx's module loader, which only compiles.
      const mainThread = readdirSync(profileDir).filter((f) =>
        /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f),
      );
      for (const summary of mainThread.map((f) => summarizeProfile(join(profileDir, f)))) {
        findings.addProfile({
          bench: 'audit-sink',
          phase: 'backlog and steady load',
          service: 'audit-sink',
          summary,
        });
        process.stderr.write(`profile of the audit sink: ${JSON.stringify(summary)}\n`);
      }
    }
    const direct =
      directRows > 0
        ? await directInsert(config.database.url, config.database.schema, directRows)
        : { rowsPerS: Number.NaN, pgCpuUsPerRow: Number.NaN };
    return {
      backlog_events: backlog,
      backlog_produce_events_per_s: Math.round(backlog / (produceMs / 1000)),
      backlog_rows_per_s: Math.round(backlogRowsPerS),
      steady_target_events_per_s: rate,
      steady_achieved_events_per_s: Math.round(achievedRate),
      steady_seconds: seconds,
      lag_p50_ms: Math.round(percentile(lags, 50)),
      lag_p95_ms: Math.round(percentile(lags, 95)),
      lag_p99_ms: Math.round(percentile(lags, 99)),
      lag_max_ms: Math.round(lags[lags.length - 1] ?? Number.NaN),
      max_group_lag_messages: maxGroupLag,
      catch_up_after_load_ms: caughtUpMs,
      rows_stored: Number(count[0]!.n),
      rows_expected: target,
      sink_cpu_us_per_row: Math.round(sinkCpuUsPerRow),
      postgres_direct_rows_per_s: Math.round(direct.rowsPerS),
      postgres_cpu_us_per_row: Math.round(direct.pgCpuUsPerRow),
      cpu_cores: availableParallelism(),
      load_average_1m: Math.round(loadavg()[0]! * 10) / 10,
    };
  } finally {
    await stopSink();
    await producer.disconnect().catch(() => undefined);
    await deleteTopics(kafka, Object.values(topics)).catch(() => undefined);
    await pool
      .query(`DROP SCHEMA IF EXISTS ${quoteIdent(config.database.schema)} CASCADE`)
      .catch(() => undefined);
    await pool.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runAuditSinkBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
