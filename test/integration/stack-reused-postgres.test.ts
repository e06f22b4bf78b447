// deploy/local/stack.sh reuses a Postgres already on 5432 that it did not start, and then has
// no superuser login to create twofold's role and database there. When twofold cannot log in
// it must stop with the SQL to run, not go on to fail in the migrations. The check runs here
// on its own (the function, cut from the script) against the local stack's Postgres: with a
// wrong password it is "a server where twofold has no login".
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const script = readFileSync(join(ROOT, 'deploy/local/stack.sh'), 'utf8');
const localEnv = readFileSync(join(ROOT, '.twofold/local.env'), 'utf8');
const DATABASE_URL = /^DATABASE_URL=(.*)$/m.exec(localEnv)?.[1] ?? '';

/** Runs the script's check_reused_postgres with `url`, say/fail as the script defines them. */
async function check(url: string) {
  const fn = /^check_reused_postgres\(\) \{[\s\S]*?^\}$/m.exec(script)?.[0];
  expect(fn, 'stack.sh defines check_reused_postgres').toBeDefined();
  const helpers = ['say', 'fail'].map(
    (name) => new RegExp(`^${name}\\(\\) \\{.*\\}$`, 'm').exec(script)?.[0],
  );
  const program = [
    'set -euo pipefail',
    `ROOT=${JSON.stringify(ROOT)}`,
    ...helpers,
    fn,
    'check_reused_postgres "$1"',
  ];
  try {
    const { stdout, stderr } = await promisify(execFile)('bash', ['-c', program.join('\n'), 'stack', url], {
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('stack.sh on a Postgres it did not start', () => {
  it('calls the check when it reuses the server on 5432', () => {
    const upPostgres = /^up_postgres\(\) \{[\s\S]*?^\}$/m.exec(script)?.[0] ?? '';
    expect(upPostgres).toMatch(
      /else\s+check_reused_postgres "\$\(sed -n 's\/\^DATABASE_URL=\/\/p' "\$ENV_FILE"\)"/,
    );
  });

  it("stops with the SQL that creates the role, the database and the analysts' role when twofold cannot log in", async () => {
    const url = new URL(DATABASE_URL);
    url.password = 'not-the-password';
    const result = await check(url.href);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('FAILED');
    expect(result.stderr).toContain('password authentication failed');
    expect(result.stderr).toContain("CREATE ROLE twofold LOGIN PASSWORD 'not-the-password' CREATEDB;");
    expect(result.stderr).toContain('CREATE DATABASE twofold OWNER twofold;');
    expect(result.stderr).toContain("CREATE ROLE twofold_analyst LOGIN PASSWORD 'analyst';");
  });

  it("says nothing and goes on when twofold logs in and the analysts' role exists", async () => {
    const result = await check(DATABASE_URL);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
