// The chart sets exactly the environment each service reads: every variable a service's
// config.ts declares is rendered from values (credentials from the Secret), and nothing the
// chart renders is unknown to the service. The specs are imported, not copied, so a variable
// added to a service without the chart (or left in the chart after the service drops it)
// fails here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parse } from 'yaml';
import { commonEnvSpec, DEFAULT_WEBHOOK_DENIED_NETWORKS } from '@twofold/config';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CHART,
  ensureTools,
  parseManifests,
  renderChart,
  ROOT,
  TOOL_BUILD_TIMEOUT,
  type Manifest,
} from './tools.js';

/** Read by `@twofold/telemetry/register` (every container's `--import`), not by a config.ts. */
const TELEMETRY_ENV = ['OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT'];
/** Credentials: only ever from the Secret (secretKeyRef), never in the ConfigMap or inline. */
const SECRET_ENV = [
  'DATABASE_URL',
  'REDIS_URL',
  'TWOFOLD_MASTER_KEYS',
  'TWOFOLD_ADMIN_KEY',
  'KAFKA_SASL_PASSWORD',
];
/** Declared by a service but deliberately not rendered, with the reason. */
const NOT_RENDERED: Record<string, Record<string, string>> = {
  api: {
    METRICS_PORT: 'declared through commonEnvSpec but unused: the api serves /metrics on API_PORT',
    METRICS_HOST: 'declared through commonEnvSpec but unused: the api serves /metrics on API_HOST',
  },
};

interface ServiceEnv {
  service: string;
  /** Names its env spec declares. */
  declared: string[];
  /** Its config loader, which validates an environment the way the service does at start. */
  load: (env: Record<string, string | undefined>) => unknown;
}

/** Every service folder's env spec and loader, imported from its config.ts. */
async function serviceEnvs(): Promise<ServiceEnv[]> {
  const dir = join(ROOT, 'services');
  const found: ServiceEnv[] = [];
  for (const service of readdirSync(dir).sort()) {
    const file = join(dir, service, 'src/config.ts');
    if (!existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const specs = Object.entries(mod).filter(([name]) => name.endsWith('EnvSpec'));
    const loaders = Object.entries(mod).filter(
      ([name, value]) => /^load\w+Config$/.test(name) && typeof value === 'function',
    );
    if (specs.length !== 1 || loaders.length !== 1)
      throw new Error(
        `${file}: expected one exported *EnvSpec and one load*Config, found ${specs.length} and ${loaders.length}`,
      );
    found.push({
      service,
      declared: Object.keys(specs[0]![1] as object).sort(),
      load: loaders[0]![1] as ServiceEnv['load'],
    });
  }
  return found;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface Container {
  args?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
}
const containerOf = (d: Manifest) =>
  (d.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers[0]!;
/** The service a Deployment runs: `services/<service>/dist/main.js` in its args. */
const serviceOf = (d: Manifest) =>
  /^services\/([^/]+)\/dist\/main\.js$/.exec(containerOf(d).args?.at(-1) ?? '')?.[1] ?? '';

/** A Deployment's environment as the container sees it: the chart's ConfigMap, then its env. */
interface RenderedEnv {
  deployment: string;
  service: string;
  /** name → where it comes from. */
  vars: Map<string, { from: 'configMap' | 'env' | 'secret'; value?: string; key?: string }>;
  duplicates: string[];
}

function renderedEnvs(ms: Manifest[], userExtras: Set<string>): RenderedEnv[] {
  const configMaps = new Map(ms.filter((m) => m.kind === 'ConfigMap').map((m) => [m.metadata.name, m]));
  return ms
    .filter((m) => m.kind === 'Deployment')
    .map((d) => {
      const c = containerOf(d);
      const vars: RenderedEnv['vars'] = new Map();
      const duplicates: string[] = [];
      const add = (name: string, source: RenderedEnv['vars'] extends Map<string, infer V> ? V : never) => {
        if (userExtras.has(name)) return;
        if (vars.has(name)) duplicates.push(name);
        vars.set(name, source);
      };
      for (const from of c.envFrom ?? []) {
        const cm = from.configMapRef && configMaps.get(from.configMapRef.name);
        for (const [name, value] of Object.entries(cm?.data ?? {})) add(name, { from: 'configMap', value });
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        add(e.name, ref ? { from: 'secret', key: ref.key } : { from: 'env', value: e.value ?? '' });
      }
      return { deployment: d.metadata.name, service: serviceOf(d), vars, duplicates };
    });
}

/** What a service declares that the chart does not set, and what the chart sets that it does not declare. */
function envDrift(declared: readonly string[], rendered: Iterable<string>, service: string) {
  const skip = NOT_RENDERED[service] ?? {};
  const want = new Set(declared.filter((name) => !(name in skip)));
  const have = new Set(rendered);
  return {
    missing: [...want].filter((name) => !have.has(name)).sort(),
    unknown: [...have].filter((name) => !want.has(name) && !TELEMETRY_ENV.includes(name)).sort(),
  };
}

const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
/** Value sets rendered: every ci/ set, and the minimal one with webhook delivery split off. */
const VALUE_SETS: { name: string; files: string[]; set: string[] }[] = [
  ...CI_VALUES.map((f) => ({ name: `ci/${f}`, files: [join(CHART, 'ci', f)], set: [] })),
  {
    name: 'ci/minimal-values.yaml + webhookDelivery.enabled',
    files: [join(CHART, 'ci/minimal-values.yaml')],
    set: ['webhookDelivery.enabled=true'],
  },
];

/** extraEnv names a value set adds on purpose (global and per service): not the chart's own. */
function userExtras(files: string[]): Set<string> {
  const names = new Set<string>();
  for (const file of files) {
    const values = (parse(readFileSync(file, 'utf8')) ?? {}) as Record<string, unknown>;
    const lists = [
      values['extraEnv'],
      ...Object.values(values).map((v) => (v as { extraEnv?: unknown })?.extraEnv),
    ];
    for (const list of lists)
      if (Array.isArray(list)) for (const e of list as { name: string }[]) names.add(e.name);
  }
  return names;
}

let helm = '';
let services: ServiceEnv[] = [];
const renders = new Map<string, { ms: Manifest[]; envs: RenderedEnv[] }>();

beforeAll(async () => {
  ({ helm = '' } = await ensureTools('helm'));
  services = await serviceEnvs();
  for (const vs of VALUE_SETS) {
    const r = await renderChart(helm, vs.files, vs.set);
    if (!r.ok) throw new Error(`helm template (${vs.name}) failed:\n${r.stderr}`);
    const ms = parseManifests(r.stdout);
    renders.set(vs.name, { ms, envs: renderedEnvs(ms, userExtras(vs.files)) });
  }
}, TOOL_BUILD_TIMEOUT);

describe('service environments in the chart', () => {
  it('finds every service and its env spec', () => {
    expect(services.map((s) => s.service)).toEqual(
      expect.arrayContaining(['api', 'audit-sink', 'lockout-detector', 'session-broadcaster', 'verifier']),
    );
    for (const s of services) expect(s.declared.length, s.service).toBeGreaterThan(5);
  });

  it('has a Deployment for every service (all enabled in the production value set)', () => {
    const { envs } = renders.get('ci/production-values.yaml')!;
    expect([...new Set(envs.map((e) => e.service))].sort()).toEqual(services.map((s) => s.service));
  });

  it.each(VALUE_SETS.map((vs) => vs.name))(
    'sets exactly the variables each service declares, each once (%s)',
    (name) => {
      const { envs } = renders.get(name)!;
      expect(envs.length).toBeGreaterThan(0);
      const drifts: Record<string, ReturnType<typeof envDrift>> = {};
      for (const rendered of envs) {
        const spec = services.find((s) => s.service === rendered.service);
        expect(
          spec,
          `${rendered.deployment} runs services/${rendered.service}, which has no config.ts`,
        ).toBeDefined();
        const drift = envDrift(spec!.declared, rendered.vars.keys(), rendered.service);
        if (drift.missing.length + drift.unknown.length > 0) drifts[rendered.deployment] = drift;
        expect(rendered.duplicates, `${rendered.deployment}: set twice (ConfigMap and env)`).toEqual([]);
        expect(rendered.vars.get('OTEL_SERVICE_NAME')?.value, rendered.deployment).toMatch(/^twofold-/);
      }
      expect(
        drifts,
        '"missing": declared by the service\'s config.ts but not set by the chart (add a value and render it in ' +
          'twofold.env, helm/twofold/templates/_helpers.tpl); "unknown": set by the chart but not declared',
      ).toEqual({});
    },
  );

  it.each(VALUE_SETS.map((vs) => vs.name))('takes credentials only from the Secret (%s)', (name) => {
    const { ms, envs } = renders.get(name)!;
    for (const rendered of envs)
      for (const [varName, source] of rendered.vars) {
        const where = `${rendered.deployment}: ${varName}`;
        expect(source.from === 'secret', where).toBe(SECRET_ENV.includes(varName));
      }
    for (const cm of ms.filter((m) => m.kind === 'ConfigMap'))
      expect(Object.keys(cm.data ?? {}).filter((k) => SECRET_ENV.includes(k))).toEqual([]);
  });

  it.each([
    'ci/minimal-values.yaml',
    'ci/production-values.yaml',
    'ci/minimal-values.yaml + webhookDelivery.enabled',
  ])('renders values each service accepts at start, by its own config loader (%s)', (name) => {
    const { ms, envs } = renders.get(name)!;
    const secret = ms.find((m) => m.kind === 'Secret' && m.metadata.name === 'twofold')!;
    for (const rendered of envs) {
      const env: Record<string, string> = {};
      for (const [varName, source] of rendered.vars)
        env[varName] =
          source.from === 'secret'
            ? Buffer.from(secret.data?.[source.key!] ?? '', 'base64').toString('utf8')
            : (source.value ?? '');
      const spec = services.find((s) => s.service === rendered.service)!;
      expect(() => spec.load(env), rendered.deployment).not.toThrow();
    }
  });

  it('keeps its exceptions honest: each is still declared, and telemetry variables are read where claimed', () => {
    for (const [service, names] of Object.entries(NOT_RENDERED)) {
      const declared = services.find((s) => s.service === service)?.declared ?? [];
      for (const name of Object.keys(names))
        expect(declared, `${service} no longer declares ${name}: drop it from NOT_RENDERED`).toContain(name);
    }
    const register = readFileSync(join(ROOT, 'libs/telemetry/src/register.ts'), 'utf8');
    for (const name of TELEMETRY_ENV)
      expect(register, `libs/telemetry/src/register.ts reads ${name}`).toContain(`'${name}'`);
  });

  it('would report drift both ways (the comparison is not vacuous)', () => {
    const api = renders.get('ci/minimal-values.yaml')!.envs.find((e) => e.service === 'api')!;
    const declared = services.find((s) => s.service === 'api')!.declared;
    const rendered = [...api.vars.keys()].filter((n) => n !== 'API_HOST').concat('AUDIT_RETENTION_DAYS');
    expect(envDrift(declared, rendered, 'api')).toEqual({
      missing: ['API_HOST'],
      unknown: ['AUDIT_RETENTION_DAYS'],
    });
  });
});

describe('webhook delivery', () => {
  const roles = (envs: RenderedEnv[], deployment: string) =>
    envs.find((e) => e.deployment === deployment)?.vars.get('TWOFOLD_SESSION_ROLES')?.value;

  it('is off by default: the session broadcaster consumes and delivers', () => {
    const { ms, envs } = renders.get('ci/minimal-values.yaml')!;
    expect(
      ms.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'webhook-delivery'),
    ).toEqual([]);
    expect(roles(envs, 'twofold-session-broadcaster')).toBe('consume,deliver');
  });

  it('on: its own Deployment (deliver), autoscaler, disruption budget and metrics Service; the broadcaster only consumes', () => {
    const { ms, envs } = renders.get('ci/minimal-values.yaml + webhookDelivery.enabled')!;
    const own = ms.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'webhook-delivery');
    expect(own.map((m) => m.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Service',
    ]);
    expect(own.every((m) => m.metadata.name === 'twofold-webhook-delivery')).toBe(true);
    expect(roles(envs, 'twofold-webhook-delivery')).toBe('deliver');
    expect(roles(envs, 'twofold-session-broadcaster')).toBe('consume');
    // One set of webhook settings for both roles.
    const settings = (deployment: string) =>
      [...envs.find((e) => e.deployment === deployment)!.vars].filter(([n]) =>
        n.startsWith('TWOFOLD_WEBHOOK_'),
      );
    expect(settings('twofold-webhook-delivery')).toEqual(settings('twofold-session-broadcaster'));
  });
});

describe('hook Jobs', () => {
  const jobEnv = (name: string) => {
    const job = renders
      .get('ci/minimal-values.yaml')!
      .ms.find((m) => m.kind === 'Job' && m.metadata.name === name)!;
    return (containerOf(job).env ?? []).map((e) => e.name).sort();
  };

  it('the migration Job sets only what migrate-main reads (libs/config commonEnvSpec), every required one included', () => {
    const names = jobEnv('twofold-migrate');
    const declared = Object.keys(commonEnvSpec);
    const required = Object.entries(commonEnvSpec)
      .filter(([, spec]) => (spec as { default?: unknown }).default === undefined)
      .map(([name]) => name);
    expect(readFileSync(join(ROOT, 'libs/store/src/migrate-main.ts'), 'utf8')).toContain('loadCommonConfig(');
    expect(names.filter((n) => !declared.includes(n))).toEqual([]);
    expect(required.filter((n) => !names.includes(n))).toEqual([]);
  });

  it('the topics Job sets only what ensure-topics.mjs reads', () => {
    const script = readFileSync(join(ROOT, 'deploy/docker/ensure-topics.mjs'), 'utf8');
    const spec = /readEnv\(\{([\s\S]*?)\}\);/.exec(script)?.[1] ?? '';
    const declared = [...spec.matchAll(/^\s*([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!);
    expect(declared).toContain('KAFKA_BROKERS');
    expect(jobEnv('twofold-topics').filter((n) => !declared.includes(n))).toEqual([]);
  });
});

describe('WEBHOOK_DENIED_NETWORKS (config.webhookDeniedNetworks)', () => {
  const deniedIn = (envs: RenderedEnv[]) =>
    new Map(
      envs
        .filter((e) => e.vars.has('WEBHOOK_DENIED_NETWORKS'))
        .map((e) => [e.deployment, e.vars.get('WEBHOOK_DENIED_NETWORKS')!.value]),
    );
  const rendered = async (set: string[]) => {
    const r = await renderChart(
      helm,
      [join(CHART, 'ci/minimal-values.yaml')],
      ['webhookDelivery.enabled=true', ...set],
    );
    return { ...r, denied: r.ok ? deniedIn(renderedEnvs(parseManifests(r.stdout), new Set())) : new Map() };
  };

  it("is one list for the api and the broadcaster in both roles, by default the services' own default", () => {
    const denied = deniedIn(renders.get('ci/minimal-values.yaml + webhookDelivery.enabled')!.envs);
    expect([...denied.keys()].sort()).toEqual([
      'twofold-api',
      'twofold-session-broadcaster',
      'twofold-webhook-delivery',
    ]);
    expect(new Set(denied.values())).toEqual(new Set([DEFAULT_WEBHOOK_DENIED_NETWORKS.join(',')]));
  });

  it('takes more networks, and none ([] in a values file, {} with --set)', async () => {
    const more = await rendered(['config.webhookDeniedNetworks={169.254.0.0/16,127.0.0.0/8}']);
    expect(more.ok, more.stderr).toBe(true);
    expect(new Set(more.denied.values())).toEqual(new Set(['169.254.0.0/16,127.0.0.0/8']));
    const none = await rendered(['config.webhookDeniedNetworks={}']);
    expect(none.ok, none.stderr).toBe(true);
    expect(new Set(none.denied.values())).toEqual(new Set(['']));
  });

  it('refuses null (it would drop the list) and an entry that is not a network', async () => {
    const dropped = await rendered(['config.webhookDeniedNetworks=null']);
    expect(dropped.ok).toBe(false);
    expect(dropped.stderr).toContain('config.webhookDeniedNetworks is null');
    const bad = await rendered(['config.webhookDeniedNetworks={metadata.internal}']);
    expect(bad.ok).toBe(false);
    expect(bad.stderr).toMatch(
      /at '\/config\/webhookDeniedNetworks\/0': 'metadata.internal' does not match pattern/,
    );
  });
});
