// The parts underneath, measured in the same run as the pipeline so the report can show how
// close each pipeline figure is to its limit:
//
// - Kafka: the broker's own perf tools (org.apache.kafka.tools.ProducerPerformance and
//   ConsumerPerformance from the jars in .cache/kafka/libs), records of the size of the
//   benchmark's events, acks=all (idempotent, as twofold's producer): the most records/s
//   the broker takes and serves, the produce latency at 1,000 records/s, and one hop
//   (EndToEndLatency: produce, then consume, one record at a time) — the floor under a
//   decision, which crosses Kafka twice.
// - Redis: redis-benchmark (SET one command per round trip, SET pipelined by 16, and a
//   small Lua script, as twofold's state scripts are), keys under a prefix deleted after.
// - Postgres: pgbench with a script that inserts 500 rows of the audit row's width per
//   statement into a plain table with a primary key (no hash chain, no secondary index).
//
// Run alone: `node --conditions=twofold-source --import tsx bench/baselines.ts [--quick]`.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { createKafka } from '@twofold/kafka';
import { createPool, quoteIdent } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';
import { REPO_ROOT, stackEnv } from '../test/support/stack.js';
import { progress } from './lib/progress.js';
import { deleteRedisPrefix } from './lib/world.js';

const run = promisify(execFile);

function javaArgs(mainClass: string, args: string[]): string[] {
  return [
    '-Xms128m',
    '-Xmx512m',
    `-Dlog4j2.configurationFile=${REPO_ROOT}deploy/local/kafka/log4j2.yaml`,
    '-cp',
    `${REPO_ROOT}.cache/kafka/libs/*`,
    mainClass,
    ...args,
  ];
}

/** Parses ProducerPerformance's summary line. */
export function parseProducerSummary(output: string) {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => /records sent, .* records\/sec/.test(l));
  if (!line) throw new Error(`ProducerPerformance printed no summary:\n${output.slice(-2_000)}`);
  const num = (re: RegExp) => Number(re.exec(line)?.[1] ?? Number.NaN);
  return {
    recordsPerS: num(/([\d.]+) records\/sec/),
    mbPerS: num(/\(([\d.]+) MB\/sec\)/),
    p50Ms: num(/(\d+) ms 50th/),
    p99Ms: num(/(\d+) ms 99th/),
  };
}

/** Parses ConsumerPerformance's csv line (with --hide-header). */
export function parseConsumerSummary(output: string) {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => l.split(',').length >= 10);
  if (!line) throw new Error(`ConsumerPerformance printed no summary:\n${output.slice(-2_000)}`);
  const f = line.split(',').map((s) => s.trim());
  return { messagesPerS: Number(f[5]), fetchMessagesPerS: Number(f[9]) };
}

async function kafkaBaseline(quick: boolean, recordBytes: number): Promise<Record<string, number>> {
  const env = stackEnv();
  const brokers = env['KAFKA_BROKERS']!;
  const topic = `t.bench-baseline-${randomUUID().slice(0, 8)}.raw`;
  const kafka = createKafka({
    brokers: brokers.split(','),
    clientId: 'bench-baseline',
    logger: createLogger({ service: 'bench', level: 'error' }),
  });
  const admin = kafka.admin();
  await admin.connect();
  const records = quick ? 20_000 : 600_000;
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 12, replicationFactor: 1 }],
    });
    const producerProps = [
      '--producer-props',
      `bootstrap.servers=${brokers}`,
      'acks=all',
      'enable.idempotence=true',
    ];
    progress.note(`kafka: ProducerPerformance ${records} records of ${recordBytes} B`);
    const produced = parseProducerSummary(
      (
        await run(
          'java',
          javaArgs('org.apache.kafka.tools.ProducerPerformance', [
            '--topic',
            topic,
            '--num-records',
            String(records),
            '--record-size',
            String(recordBytes),
            '--throughput',
            '-1',
            ...producerProps,
          ]),
          { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
        )
      ).stdout,
    );
    progress.note('kafka: ConsumerPerformance');
    const consumed = parseConsumerSummary(
      (
        await run(
          'java',
          javaArgs('org.apache.kafka.tools.ConsumerPerformance', [
            '--bootstrap-server',
            brokers,
            '--topic',
            topic,
            '--messages',
            String(records),
            '--group',
            `${topic}.perf`,
            '--hide-header',
            '--timeout',
            '30000',
          ]),
          { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
        )
      ).stdout,
    );
    const latencyRecords = quick ? 500 : 10_000;
    progress.note('kafka: produce latency at 1,000 records/s');
    const paced = parseProducerSummary(
      (
        await run(
          'java',
          javaArgs('org.apache.kafka.tools.ProducerPerformance', [
            '--topic',
            topic,
            '--num-records',
            String(latencyRecords),
            '--record-size',
            String(recordBytes),
            '--throughput',
            '1000',
            ...producerProps,
            'linger.ms=0',
          ]),
          { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
        )
      ).stdout,
    );
    progress.note('kafka: EndToEndLatency (produce → consume, one at a time)');
    const hops = quick ? 200 : 5_000;
    const e2e = (
      await run(
        'java',
        javaArgs('org.apache.kafka.tools.EndToEndLatency', [
          brokers,
          topic,
          String(hops),
          'all',
          String(recordBytes),
        ]),
        { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
      )
    ).stdout;
    const hop = /50th = ([\d.]+), 99th = ([\d.]+)/.exec(e2e);
    return {
      record_bytes: recordBytes,
      hop_p50_ms: Number(hop?.[1] ?? Number.NaN),
      hop_p99_ms: Number(hop?.[2] ?? Number.NaN),
      produce_records_per_s: Math.round(produced.recordsPerS),
      produce_mb_per_s: produced.mbPerS,
      consume_records_per_s: Math.round(consumed.messagesPerS),
      consume_fetch_records_per_s: Math.round(consumed.fetchMessagesPerS),
      produce_at_1000_p50_ms: paced.p50Ms,
      produce_at_1000_p99_ms: paced.p99Ms,
    };
  } finally {
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
    await admin.deleteGroups([`${topic}.perf`]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** redis-benchmark's csv: "test","rps","avg","min","p50","p95","p99","max". */
export function parseRedisBenchmark(output: string) {
  const line = output
    .trim()
    .split('\n')
    .reverse()
    .find((l) => /^"[^"]+","[\d.]+"/.test(l));
  if (!line) throw new Error(`redis-benchmark printed no result:\n${output.slice(-2_000)}`);
  const f = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
  return { rps: Number(f[1]), p50Ms: Number(f[4]), p99Ms: Number(f[6]) };
}

async function redisBaseline(quick: boolean): Promise<Record<string, number>> {
  const url = new URL(stackEnv()['REDIS_URL']!);
  const prefix = `t:bench-baseline-${randomUUID().slice(0, 8)}:`;
  const requests = quick ? 5_000 : 200_000;
  const base = [
    '-h',
    url.hostname,
    '-p',
    url.port || '6379',
    '-n',
    String(requests),
    '-r',
    '100000',
    '--csv',
  ];
  const value = 'x'.repeat(100);
  const bench = async (args: string[]) =>
    parseRedisBenchmark((await run('redis-benchmark', [...base, ...args], { timeout: 300_000 })).stdout);
  try {
    progress.note('redis: SET');
    const set = await bench(['-c', '50', 'SET', `${prefix}__rand_int__`, value]);
    progress.note('redis: SET pipelined');
    const pipelined = await bench(['-c', '50', '-P', '16', 'SET', `${prefix}__rand_int__`, value]);
    progress.note('redis: Lua script');
    const script = await bench([
      '-c',
      '50',
      'EVAL',
      "redis.call('INCR', KEYS[1]); return redis.call('PEXPIRE', KEYS[1], 60000)",
      '1',
      `${prefix}counter:__rand_int__`,
    ]);
    return {
      set_ops_per_s: Math.round(set.rps),
      set_p50_ms: set.p50Ms,
      set_p99_ms: set.p99Ms,
      set_pipelined_ops_per_s: Math.round(pipelined.rps),
      lua_script_ops_per_s: Math.round(script.rps),
      lua_script_p99_ms: script.p99Ms,
    };
  } finally {
    await deleteRedisPrefix(url.toString(), prefix).catch(() => undefined);
  }
}

async function postgresBaseline(quick: boolean): Promise<Record<string, number>> {
  const databaseUrl = stackEnv()['DATABASE_URL']!;
  const schema = `bench_baseline_${randomUUID().slice(0, 8)}`;
  const pool = createPool({ url: databaseUrl, schema: 'public', max: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'twofold-pgbench-'));
  const rowsPerStatement = 500;
  const table = `${quoteIdent(schema)}.events`;
  try {
    await pool.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
    await pool.query(
      `CREATE TABLE ${table} (event_id text NOT NULL, occurred_at timestamptz NOT NULL, type text NOT NULL,
        username text, app_id text, ip inet, payload jsonb NOT NULL, PRIMARY KEY (event_id, occurred_at))`,
    );
    // One statement = one batch of the audit sink's size: rows of the audit row's width.
    const script = join(dir, 'insert.sql');
    writeFileSync(
      script,
      `INSERT INTO ${table} SELECT md5(random()::text || i), now(), 'twofold.login.succeeded', 'user-' || (i % 5000), 'jira', '10.0.0.1',
  jsonb_build_object('appId', 'jira', 'session', md5(i::text) || md5(random()::text), 'method', 'password', 'ip', '10.0.0.1', 'pad', repeat('x', 120))
  FROM generate_series(1, ${rowsPerStatement}) AS i;\n`,
    );
    progress.note(`postgres: pgbench, ${rowsPerStatement} rows per insert`);
    const { stdout } = await run(
      'pgbench',
      ['-n', '-c', '4', '-j', '2', '-T', quick ? '1' : '15', '-f', script, databaseUrl],
      { timeout: 300_000 },
    );
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN);
    const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1] ?? Number.NaN);
    return {
      insert_rows_per_s: Math.round(tps * rowsPerStatement),
      insert_statement_ms_mean: latency,
      rows_per_statement: rowsPerStatement,
    };
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`).catch(() => undefined);
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Baselines {
  kafka: Record<string, number>;
  redis: Record<string, number>;
  postgres: Record<string, number>;
}

export async function runBaselines(opts: { quick: boolean; recordBytes: number }): Promise<Baselines> {
  return {
    kafka: await kafkaBaseline(opts.quick, opts.recordBytes),
    redis: await redisBaseline(opts.quick),
    postgres: await postgresBaseline(opts.quick),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const figures = await runBaselines({ quick: process.argv.includes('--quick'), recordBytes: 400 });
  progress.done();
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
}
