// The laptop stack and the image: `docker compose config` (the Compose CLI plugin built by
// deploy/tools/install-tools.sh; no Docker engine needed) accepts deploy/compose.yaml, and the
// compose file and the Dockerfile keep the runtime as hardened as the chart's.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { attempt, ensureTools, ROOT, TOOL_BUILD_TIMEOUT } from './tools.js';

const COMPOSE_FILE = join(ROOT, 'deploy/compose.yaml');
const TWOFOLD = ['api', 'verifier', 'lockout-detector', 'session-broadcaster', 'audit-sink'];

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  tmpfs?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
}

let composeConfig: { services: Record<string, ComposeService> } = { services: {} };
let composeOutput = { ok: false, stdout: '', stderr: '' };

/** `docker compose` through the docker CLI when there is one, else the plugin binary on its own. */
async function compose(args: string[]) {
  const plugin = (await ensureTools('compose'))['docker-compose'] ?? '';
  const docker = await attempt('sh', ['-c', 'command -v docker']);
  if (docker.ok) {
    // DOCKER_CONFIG points the CLI at the directory whose cli-plugins/ holds the plugin we built.
    const config = dirname(dirname(realpathSync(plugin)));
    return attempt('docker', ['compose', ...args], { DOCKER_CONFIG: config });
  }
  return attempt(plugin, args);
}

beforeAll(async () => {
  composeOutput = await compose(['-f', COMPOSE_FILE, 'config', '--format', 'json']);
  if (composeOutput.ok) composeConfig = JSON.parse(composeOutput.stdout) as typeof composeConfig;
}, TOOL_BUILD_TIMEOUT);

describe('deploy/compose.yaml', () => {
  it('is accepted by docker compose config', () => {
    expect(composeOutput.ok, composeOutput.stderr).toBe(true);
  });

  it('runs Kafka (KRaft, official image), Postgres and Redis with health checks', () => {
    const { kafka, postgres, redis } = composeConfig.services;
    expect(kafka?.image).toMatch(/^apache\/kafka:/);
    expect(kafka?.environment?.['KAFKA_PROCESS_ROLES']).toBe('broker,controller');
    expect(postgres?.image).toMatch(/^postgres:/);
    expect(redis?.image).toMatch(/^redis:/);
    for (const name of ['kafka', 'postgres', 'redis']) {
      expect(composeConfig.services[name]?.healthcheck?.test, name).toBeDefined();
    }
  });

  it('runs every service from the one image, hardened, after the topic and migration one-shots', () => {
    const services = composeConfig.services;
    expect(services['migrate']?.command).toEqual(['libs/store/dist/migrate-main.js']);
    expect(services['topics']?.command).toEqual(['deploy/docker/ensure-topics.mjs']);
    for (const name of [...TWOFOLD, 'migrate', 'topics']) {
      const s = services[name];
      expect(s, name).toBeDefined();
      expect(s?.build?.dockerfile, name).toBe('deploy/docker/Dockerfile');
      expect(s?.image, name).toBe('twofold:local');
      expect(s?.read_only, `${name}: read-only root filesystem`).toBe(true);
      expect(s?.user, `${name}: non-root`).toMatch(/^[1-9][0-9]*:[1-9][0-9]*$/);
      expect(s?.cap_drop, name).toEqual(['ALL']);
      expect(s?.security_opt, name).toContain('no-new-privileges:true');
      expect(s?.tmpfs?.[0], name).toMatch(/^\/tmp/);
    }
    for (const name of TWOFOLD) {
      const s = services[name]!;
      expect(s.command, name).toEqual([
        '--import',
        '@twofold/telemetry/register',
        `services/${name}/dist/main.js`,
      ]);
      expect(s.healthcheck?.test.join(' '), name).toContain('/readyz');
      expect(s.depends_on?.['migrate']?.condition, name).toBe('service_completed_successfully');
      expect(s.depends_on?.['topics']?.condition, name).toBe('service_completed_successfully');
      // Compose prints durations like "30s"; the grace must outlast the shutdown deadline.
      const graceMs = Number.parseInt(s.stop_grace_period ?? '10', 10) * 1000;
      expect(graceMs, name).toBeGreaterThan(Number(s.environment?.['SHUTDOWN_TIMEOUT_MS'] ?? 20_000));
      expect(s.environment?.['KAFKA_BROKERS'], name).toBe('kafka:19092');
    }
  });
});

describe('deploy/docker/Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'deploy/docker/Dockerfile'), 'utf8');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages = instructions.filter((line) => line.startsWith('FROM '));
  const finalStage = instructions.slice(instructions.lastIndexOf(stages.at(-1)!));

  it('is multi-stage and ships neither build tools nor npm', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(finalStage.some((l) => /^RUN .*npm ci/.test(l))).toBe(false);
    expect(finalStage.some((l) => l.startsWith('RUN rm -rf /usr/local/lib/node_modules/npm'))).toBe(true);
    expect(instructions.some((l) => l.includes('npm ci --omit=dev'))).toBe(true);
  });

  it('runs as a numeric non-root user, node directly, the api by default', () => {
    const user = finalStage.filter((l) => l.startsWith('USER ')).at(-1);
    expect(user).toMatch(/^USER [1-9][0-9]*(:[1-9][0-9]*)?$/);
    expect(finalStage).toContain('ENTRYPOINT ["node"]');
    expect(finalStage).toContain(
      'CMD ["--import", "@twofold/telemetry/register", "services/api/dist/main.js"]',
    );
  });

  it('copies what the one-shots run and keeps secrets and caches out of the build context', () => {
    expect(existsSync(join(ROOT, 'deploy/docker/ensure-topics.mjs'))).toBe(true);
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const pattern of ['**/node_modules', '**/dist', '.git', '.cache', '.twofold', '**/*.env']) {
      expect(ignored, pattern).toContain(pattern);
    }
  });
});
