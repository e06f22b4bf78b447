// A service started with a missing or invalid variable stops at once, naming each one.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/stack.js';

const run = (service: string, env: Record<string, string>) =>
  spawnSync(
    process.execPath,
    ['--conditions=twofold-source', '--import', 'tsx', `services/${service}/src/main.ts`],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env['PATH'] ?? '', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    },
  );

describe('configuration at start-up', () => {
  it('the verifier names the missing KAFKA_BROKERS and exits 78', () => {
    const result = run('verifier', {
      REDIS_URL: 'redis://127.0.0.1:6379',
      DATABASE_URL: 'postgres://u:p@127.0.0.1/db',
    });
    expect(result.status).toBe(78);
    expect(result.stderr).toContain('verifier: invalid configuration');
    expect(result.stderr).toContain('KAFKA_BROKERS is required but not set');
    expect(result.stderr).not.toContain('    at '); // a message, not a stack trace
  });

  it('the api names every bad variable at once', () => {
    const result = run('api', { KAFKA_BROKERS: '127.0.0.1:9092', METRICS_PORT: 'abc' });
    expect(result.status).toBe(78);
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'TWOFOLD_ADMIN_KEY', 'METRICS_PORT']) {
      expect(result.stderr).toContain(name);
    }
  });
});
