// `twofold audit verify`: walks the audit trail's hash chains and names the first broken
// row of each broken chain. Needs only SELECT on the audit tables (the analyst role will do).
//
//   node --conditions=twofold-source --import tsx tools/cli/audit-verify.ts [--from DAY] [--to DAY] [--topic NAME] [--json]
//
// Reads DATABASE_URL and DATABASE_SCHEMA. Exit code 0: intact; 1: broken; 2: bad usage or
// the database could not be read.
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, readEnv, str, url } from '@twofold/config';
import { createPool, verifyAuditChains, type ChainVerifyReport, type Pool } from '@twofold/store';

export type { ChainVerifyReport, ChainProblem } from '@twofold/store';

export interface VerifyAuditChainOptions {
  /** A pool on the twofold schema; or databaseUrl (+ schema) to open one for this run. */
  pool?: Pool;
  databaseUrl?: string;
  schema?: string;
  /** Only chains of these UTC days, YYYY-MM-DD, inclusive. */
  fromDay?: string;
  toDay?: string;
  /** Only chains of this Kafka topic. */
  topic?: string;
  onChain?: (done: number, total: number) => void;
}

/**
 * Verifies the audit trail: every chain (Kafka topic, partition, day) from its first row
 * to its recorded head. The report names, per broken chain, the first row that does not
 * check out — edited, missing (deleted), relinked (reordered or replaced), truncated —
 * and rows stored outside any chain.
 */
export async function verifyAuditChain(options: VerifyAuditChainOptions): Promise<ChainVerifyReport> {
  const own = options.pool
    ? undefined
    : createPool({
        url: options.databaseUrl ?? failMissing('databaseUrl'),
        schema: options.schema ?? 'twofold',
        max: 1,
        applicationName: 'twofold-audit-verify',
      });
  const pool = options.pool ?? own!;
  try {
    return await verifyAuditChains(pool, {
      ...(options.fromDay ? { fromDay: options.fromDay } : {}),
      ...(options.toDay ? { toDay: options.toDay } : {}),
      ...(options.topic ? { topic: options.topic } : {}),
      ...(options.onChain ? { onChain: options.onChain } : {}),
    });
  } finally {
    await own?.end();
  }
}

function failMissing(name: string): never {
  throw new Error(`verifyAuditChain: pass a pool or ${name}`);
}

/** The report as lines a person reads: a verdict, then one line per broken chain. */
export function formatAuditReport(report: ChainVerifyReport): string {
  const lines = [
    report.ok
      ? `audit trail intact: ${report.rows} rows in ${report.chains} chains`
      : `audit trail BROKEN: ${report.problems.length} problem(s) in ${report.rows} rows, ${report.chains} chains`,
  ];
  if (report.legacyRows > 0)
    lines.push(`note: ${report.legacyRows} rows predate chaining and are not covered`);
  for (const p of report.problems) {
    const chain = p.kafkaTopic === null ? '' : `${p.kafkaTopic}[${p.kafkaPartition}] ${p.day ?? ''} `;
    const where = p.seq === null ? '' : `#${p.seq} `;
    const event = p.eventId === null ? '' : `event ${p.eventId} `;
    lines.push(`  ${p.kind.padEnd(10)} ${chain}${where}${event}— ${p.detail}`);
  }
  return lines.join('\n');
}

const USAGE = `usage: twofold audit verify [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--topic NAME] [--json]
  Checks the audit trail's hash chains and names the first broken row of each chain.
  Reads DATABASE_URL and DATABASE_SCHEMA (default twofold). Exit 0 intact, 1 broken, 2 error.`;

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Runs the command; returns the exit code (the caller exits). */
export async function main(
  argv: readonly string[] = process.argv.slice(2),
  env: Record<string, string | undefined> = process.env,
  out: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
  err: (text: string) => void = (text) => process.stderr.write(`${text}\n`),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        topic: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    err(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.help) {
    out(USAGE);
    return 0;
  }
  for (const name of ['from', 'to'] as const) {
    const value = parsed[name];
    if (value !== undefined && (!DAY.test(value) || Number.isNaN(Date.parse(value)))) {
      err(`--${name} must be a day, YYYY-MM-DD (got ${value})\n${USAGE}`);
      return 2;
    }
  }
  let settings;
  try {
    settings = readEnv(
      {
        DATABASE_URL: url({ desc: 'postgres://user:password@host:port/database' }),
        DATABASE_SCHEMA: str({ default: 'twofold' }),
      },
      env,
    );
  } catch (e) {
    err(e instanceof ConfigError ? e.message : String(e));
    return 2;
  }
  try {
    const report = await verifyAuditChain({
      databaseUrl: settings.DATABASE_URL,
      schema: settings.DATABASE_SCHEMA,
      ...(parsed.from ? { fromDay: parsed.from } : {}),
      ...(parsed.to ? { toDay: parsed.to } : {}),
      ...(parsed.topic ? { topic: parsed.topic } : {}),
    });
    out(parsed.json ? JSON.stringify(report, null, 2) : formatAuditReport(report));
    return report.ok ? 0 : 1;
  } catch (e) {
    err(`audit verify failed: ${(e as Error).message}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
