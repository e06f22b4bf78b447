// The Helm chart, checked the way CI and an SRE would: lint, render every value set, validate
// every object offline against the Kubernetes (and operator CRD) schemas, and hold the
// invariants the chart promises. Tools come from deploy/tools/install-tools.sh.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { parse, stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  attempt,
  CHART,
  ensureTools,
  KUBE_VERSION,
  parseManifests,
  renderChart,
  ROOT,
  tempFile,
  TOOL_BUILD_TIMEOUT,
  type Manifest,
} from './tools.js';

const CI_VALUES = readdirSync(join(CHART, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const MINIMAL = join(CHART, 'ci/minimal-values.yaml');
const SERVICES = {
  api: 'api',
  verifier: 'verifier',
  lockoutDetector: 'lockout-detector',
  sessionBroadcaster: 'session-broadcaster',
  auditSink: 'audit-sink',
} as const;
const CONSUMERS = ['verifier', 'lockout-detector', 'session-broadcaster', 'audit-sink'];
/** The service a component runs: webhook delivery is the session broadcaster in its deliver role. */
const serviceOf = (component: string | undefined) =>
  component === 'webhook-delivery' ? 'session-broadcaster' : component;

let helm = '';
let validator = '';
let crds = '';
let helmDocs = '';

beforeAll(async () => {
  ({ helm = '' } = await ensureTools('helm'));
}, TOOL_BUILD_TIMEOUT);
beforeAll(async () => {
  const tools = await ensureTools('kubectl-validate', 'crds');
  validator = tools['kubectl-validate'] ?? '';
  crds = tools['crds'] ?? '';
}, TOOL_BUILD_TIMEOUT);
beforeAll(async () => {
  helmDocs = (await ensureTools('helm-docs'))['helm-docs'] ?? '';
}, TOOL_BUILD_TIMEOUT);

const render = (valuesFiles: string[], set: string[] = []) => renderChart(helm, valuesFiles, set);

const rendered = new Map<string, Promise<Manifest[]>>();
/** Renders a value set (cached per arguments); fails the test with helm's message if it does not render. */
function manifests(valuesFiles: string[], set: string[] = []): Promise<Manifest[]> {
  const key = JSON.stringify([valuesFiles, set]);
  let result = rendered.get(key);
  if (!result) {
    result = render(valuesFiles, set).then((r) => {
      if (!r.ok) throw new Error(`helm template failed:\n${r.stderr}`);
      return parseManifests(r.stdout);
    });
    rendered.set(key, result);
  }
  return result;
}

const ciFile = (name: string) => join(CHART, 'ci', name);
const componentOf = (m: Manifest) => m.metadata.labels?.['app.kubernetes.io/component'];
const ofKind = (ms: Manifest[], kind: string) => ms.filter((m) => m.kind === kind);

interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  startupProbe?: { httpGet?: { path: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  containers: Container[];
  securityContext?: Record<string, unknown>;
  terminationGracePeriodSeconds?: number;
  automountServiceAccountToken?: boolean;
  volumes?: { name: string; emptyDir?: unknown }[];
}
const podOf = (m: Manifest) => (m.spec as { template: { spec: PodSpec } }).template.spec;
const podAnnotationsOf = (m: Manifest) =>
  (m.spec as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata
    .annotations ?? {};

function expectRestricted(where: string, pod: PodSpec) {
  expect(pod.securityContext, `${where}: pod securityContext`).toMatchObject({
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  for (const c of pod.containers) {
    expect(c.securityContext, `${where}/${c.name}: container securityContext`).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(Number(c.securityContext?.['runAsUser']), `${where}/${c.name}: runAsUser`).toBeGreaterThan(0);
    // A read-only root filesystem still needs a writable /tmp.
    expect(c.volumeMounts, `${where}/${c.name}: /tmp mount`).toContainEqual({
      name: 'tmp',
      mountPath: '/tmp',
    });
  }
}

describe('helm lint', () => {
  it.each(CI_VALUES)('passes with --strict for ci/%s', async (file) => {
    const r = await attempt(helm, ['lint', CHART, '--strict', '--values', ciFile(file)]);
    expect(r.ok, r.stdout + r.stderr).toBe(true);
    expect(r.stdout).toContain('0 chart(s) failed');
  });
});

describe('rendering', () => {
  it('refuses bare defaults, naming in one message every value a working install needs', async () => {
    const r = await render([]);
    expect(r.ok).toBe(false);
    for (const missing of [
      'kafka.brokers is empty',
      'secrets.databaseUrl is empty',
      'secrets.redisUrl is empty',
      'secrets.masterKeys is empty',
      'secrets.adminKey is empty',
      'config.activeKeyId is empty',
      'api.publicUrl is empty',
    ]) {
      expect(r.stderr).toContain(missing);
    }
  });

  it('renders the defaults plus only the required values (ci/minimal-values.yaml) into every service', async () => {
    const ms = await manifests([MINIMAL]);
    for (const component of Object.values(SERVICES)) {
      const kinds = ms.filter((m) => componentOf(m) === component).map((m) => m.kind);
      expect(kinds.sort(), component).toEqual([
        'Deployment',
        'HorizontalPodAutoscaler',
        'PodDisruptionBudget',
        'Service',
      ]);
    }
    expect(ofKind(ms, 'ConfigMap')).toHaveLength(1);
    expect(ofKind(ms, 'ServiceAccount')).toHaveLength(1);
    expect(
      ofKind(ms, 'Job')
        .map((j) => j.metadata.name)
        .sort(),
    ).toEqual(['twofold-migrate', 'twofold-topics']);
  });
});

describe('offline validation against the Kubernetes schemas', () => {
  it.each(CI_VALUES)(`every object of ci/%s is valid for Kubernetes ${KUBE_VERSION}`, async (file) => {
    const r = await render([ciFile(file)]);
    expect(r.ok, r.stderr).toBe(true);
    const path = tempFile(file, r.stdout);
    const v = await attempt(validator, ['--version', KUBE_VERSION, '--local-crds', crds, path]);
    expect(v.ok, `kubectl-validate:\n${v.stdout}\n${v.stderr}`).toBe(true);
  });

  it('would catch a broken object (the validation is not vacuous)', async () => {
    const ms = await manifests([ciFile('production-values.yaml')]);
    // kubectl-validate reports one kind of problem per object, so each object carries one.
    const unknownField = structuredClone(ofKind(ms, 'Deployment')[0]!);
    (podOf(unknownField).containers[0] as unknown as Record<string, unknown>)['replicas'] = 2;
    const wrongType = structuredClone(ofKind(ms, 'Deployment')[1]!);
    (podOf(wrongType).containers[0] as unknown as Record<string, unknown>)['ports'] = '8080';
    const monitor = structuredClone(ofKind(ms, 'ServiceMonitor')[0]!);
    (monitor.spec as Record<string, unknown>)['endpoint'] = [{ port: 'metrics' }];
    const path = tempFile(
      'broken.yaml',
      [unknownField, wrongType, monitor].map((m) => stringify(m)).join('---\n'),
    );
    const v = await attempt(validator, ['--version', KUBE_VERSION, '--local-crds', crds, path]);
    expect(v.ok).toBe(false);
    const out = v.stdout + v.stderr;
    expect(out).toContain('containers[0].replicas: Invalid value: value provided for unknown field');
    expect(out).toMatch(/containers\[0\]\.ports.*must be of type array/);
    expect(out).toContain('spec.endpoint');
  });
});

describe('every Deployment, in every value set', () => {
  it.each(CI_VALUES)(
    'has probes, resources, the restricted security context and a long enough grace period (ci/%s)',
    async (file) => {
      const ms = await manifests([ciFile(file)]);
      const config = ofKind(ms, 'ConfigMap')[0]!;
      const shutdownMs = Number(config.data?.['SHUTDOWN_TIMEOUT_MS']);
      expect(shutdownMs).toBeGreaterThan(0);
      const deployments = ofKind(ms, 'Deployment');
      expect(deployments.length).toBeGreaterThan(0);
      for (const d of deployments) {
        const where = d.metadata.name;
        const pod = podOf(d);
        expect(pod.containers, where).toHaveLength(1);
        const c = pod.containers[0]!;
        expect(c.command, where).toEqual(['node']);
        expect(c.args, where).toEqual([
          '--import',
          '@twofold/telemetry/register',
          `services/${serviceOf(componentOf(d))}/dist/main.js`,
        ]);
        expect(c.livenessProbe?.httpGet?.path, `${where}: liveness`).toBe('/healthz');
        expect(c.readinessProbe?.httpGet?.path, `${where}: readiness`).toBe('/readyz');
        expect(c.startupProbe?.httpGet?.path, `${where}: startup`).toBe('/healthz');
        expect(c.resources?.requests?.['cpu'], `${where}: cpu request`).toBeTruthy();
        expect(c.resources?.requests?.['memory'], `${where}: memory request`).toBeTruthy();
        expect(c.resources?.limits?.['memory'], `${where}: memory limit`).toBeTruthy();
        expectRestricted(where, pod);
        expect(pod.automountServiceAccountToken, `${where}: no API token`).toBe(false);
        expect(
          pod.terminationGracePeriodSeconds! * 1000,
          `${where}: grace period vs SHUTDOWN_TIMEOUT_MS`,
        ).toBeGreaterThan(shutdownMs);
        expect(podAnnotationsOf(d)['checksum/config'], `${where}: config checksum`).toMatch(/^[a-f0-9]{64}$/);
      }
    },
  );

  it('rolls when the configuration changes (config checksum annotation)', async () => {
    const before = ofKind(await manifests([MINIMAL]), 'Deployment');
    const after = ofKind(await manifests([MINIMAL], ['config.logLevel=debug']), 'Deployment');
    expect(after).toHaveLength(before.length);
    before.forEach((d, i) => {
      const changed = podAnnotationsOf(after[i]!)['checksum/config'];
      expect(changed, d.metadata.name).not.toBe(podAnnotationsOf(d)['checksum/config']);
    });
  });

  it('the api keeps serving during its preStop sleep, within the grace period', async () => {
    const api = ofKind(await manifests([MINIMAL]), 'Deployment').find((d) => componentOf(d) === 'api')!;
    const c = podOf(api).containers[0] as Container & {
      lifecycle?: { preStop?: { exec?: { command: string[] } } };
    };
    expect(c.lifecycle?.preStop?.exec?.command).toEqual(['sleep', '5']);
    expect(podOf(api).terminationGracePeriodSeconds).toBeGreaterThan(5 + 20);
  });
});

describe('per service', () => {
  it.each(Object.entries(SERVICES))(
    'disabling %s removes all of its objects and nothing else',
    async (key, component) => {
      const all = await manifests([MINIMAL]);
      const without = await manifests([MINIMAL], [`${key}.enabled=false`]);
      const id = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
      expect(without.filter((m) => componentOf(m) === component)).toEqual([]);
      const expected = all.filter((m) => componentOf(m) !== component).map(id);
      expect(without.map(id).sort()).toEqual(expected.sort());
      expect(all.filter((m) => componentOf(m) === component).length).toBeGreaterThanOrEqual(4);
    },
  );

  it('keeps every name a DNS label, with the component whole, under a long release name', async () => {
    const long = 'a-release-name-long-enough-to-need-shortening-in-every-object-x';
    const ms = await manifests([ciFile('production-values.yaml')], [`fullnameOverride=${long}`]);
    for (const m of ms)
      expect(m.metadata.name.length, `${m.kind}/${m.metadata.name}`).toBeLessThanOrEqual(63);
    for (const d of ofKind(ms, 'Deployment'))
      expect(d.metadata.name.endsWith(`-${componentOf(d)}`)).toBe(true);
    expect(new Set(ofKind(ms, 'Deployment').map((d) => d.metadata.name)).size).toBe(6);
  });

  it('gives each service only the secrets it needs', async () => {
    const ms = await manifests([MINIMAL], ['webhookDelivery.enabled=true']);
    expect(ofKind(ms, 'Deployment')).toHaveLength(6);
    for (const d of ofKind(ms, 'Deployment')) {
      const secrets = (podOf(d).containers[0]!.env ?? [])
        .filter((e) => e.valueFrom?.secretKeyRef)
        .map((e) => e.name);
      // KAFKA_SASL_PASSWORD: every service talks to Kafka (optional while kafka.sasl.mechanism is empty).
      const expected = ['DATABASE_URL', 'REDIS_URL', 'KAFKA_SASL_PASSWORD'];
      // Only the api decrypts TOTP secrets (codes are verified there) and checks the admin key.
      if (componentOf(d) === 'api') expected.push('TWOFOLD_MASTER_KEYS', 'TWOFOLD_ADMIN_KEY');
      expect(secrets.sort(), d.metadata.name).toEqual(expected.sort());
    }
  });

  it.each(CI_VALUES)('never scales a consumer beyond the partition count (ci/%s)', async (file) => {
    const values = parse(readFileSync(ciFile(file), 'utf8')) as { kafka?: { partitions?: number } };
    const partitions = values.kafka?.partitions ?? 12;
    const ms = await manifests([ciFile(file)]);
    for (const m of ms.filter((x) => CONSUMERS.includes(componentOf(x) ?? ''))) {
      const spec = m.spec as { maxReplicas?: number; maxReplicaCount?: number; replicas?: number };
      const most = spec.maxReplicas ?? spec.maxReplicaCount ?? spec.replicas;
      if (most !== undefined) expect(most, `${m.kind}/${m.metadata.name}`).toBeLessThanOrEqual(partitions);
    }
  });

  it('scales consumers on their group lag with KEDA instead of an HPA when asked', async () => {
    const ms = await manifests([ciFile('keda-values.yaml')]);
    const scaled = ofKind(ms, 'ScaledObject');
    expect(scaled.map(componentOf).sort()).toEqual([...CONSUMERS].sort());
    expect(ofKind(ms, 'HorizontalPodAutoscaler').map(componentOf)).toEqual(['api']);
    for (const so of scaled) {
      const spec = so.spec as {
        scaleTargetRef: { name: string };
        triggers: { type: string; metadata: Record<string, string> }[];
      };
      expect(spec.scaleTargetRef.name).toBe(so.metadata.name);
      expect(spec.triggers[0]?.type).toBe('kafka');
      expect(spec.triggers[0]?.metadata['consumerGroup']).toBe(`twofold-${componentOf(so)}`);
      const deployment = ofKind(ms, 'Deployment').find((d) => d.metadata.name === so.metadata.name)!;
      expect(
        (deployment.spec as { replicas?: number }).replicas,
        'the autoscaler owns replicas',
      ).toBeUndefined();
    }
  });

  it('runs topics then migrations as restricted pre-install/pre-upgrade hooks', async () => {
    const ms = await manifests([MINIMAL]);
    const hooks = ms.filter((m) => m.metadata.annotations?.['helm.sh/hook']);
    const weight = (name: string) =>
      Number(hooks.find((h) => h.metadata.name === name)?.metadata.annotations?.['helm.sh/hook-weight']);
    for (const h of hooks) expect(h.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
    expect(weight('twofold-hook')).toBeLessThan(weight('twofold-topics'));
    expect(weight('twofold-topics')).toBeLessThan(weight('twofold-migrate'));
    const migrate = ofKind(ms, 'Job').find((j) => j.metadata.name === 'twofold-migrate')!;
    expect(podOf(migrate).containers[0]!.command).toEqual(['node', 'libs/store/dist/migrate-main.js']);
    for (const job of ofKind(ms, 'Job')) expectRestricted(job.metadata.name, podOf(job));
  });
});

describe('Kafka TLS and SASL', () => {
  const SECURE = [
    'kafka.ssl.enabled=true',
    'kafka.ssl.caSecret=kafka-ca',
    'kafka.sasl.mechanism=scram-sha-512',
    'kafka.sasl.username=twofold',
    'secrets.kafkaSaslPassword=s3cret',
  ];
  type Env = {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
  };
  const envOf = (m: Manifest) => (podOf(m).containers[0]!.env ?? []) as Env[];
  const mountsOf = (m: Manifest) =>
    (podOf(m).containers[0] as { volumeMounts?: { name: string; mountPath: string }[] }).volumeMounts ?? [];
  const volumesOf = (m: Manifest) =>
    (podOf(m) as { volumes?: { name: string; secret?: { secretName: string } }[] }).volumes ?? [];

  it('are off by default: plain text, no SASL, the password optional so an existing Secret need not hold it', async () => {
    const ms = await manifests([MINIMAL]);
    const cm = ofKind(ms, 'ConfigMap')[0]!;
    expect(cm.data).toMatchObject({
      KAFKA_SSL: 'false',
      KAFKA_SSL_CA_FILE: '',
      KAFKA_SASL_MECHANISM: '',
      KAFKA_SASL_USERNAME: '',
    });
    for (const d of ofKind(ms, 'Deployment')) {
      const password = envOf(d).find((e) => e.name === 'KAFKA_SASL_PASSWORD');
      expect(password?.valueFrom?.secretKeyRef, d.metadata.name).toMatchObject({
        key: 'KAFKA_SASL_PASSWORD',
        optional: true,
      });
      expect(
        volumesOf(d).map((v) => v.name),
        d.metadata.name,
      ).not.toContain('kafka-ca');
    }
    const topics = ofKind(ms, 'Job').find((j) => j.metadata.name === 'twofold-topics')!;
    expect(envOf(topics).find((e) => e.name === 'KAFKA_SASL_PASSWORD')).toBeUndefined();
  });

  it('reach every Deployment and the topics Job: settings, the password from the Secret, the CA mounted', async () => {
    const ms = await manifests([MINIMAL], SECURE);
    const cm = ofKind(ms, 'ConfigMap')[0]!;
    expect(cm.data).toMatchObject({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: '/etc/twofold/kafka-ca/ca.crt',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'twofold',
    });
    expect(JSON.stringify(cm)).not.toContain('s3cret');
    const secret = ofKind(ms, 'Secret').find((m) => m.metadata.name === 'twofold')!;
    expect(Buffer.from(secret.data!['KAFKA_SASL_PASSWORD']!, 'base64').toString()).toBe('s3cret');
    const deployments = ofKind(ms, 'Deployment');
    expect(deployments.length).toBeGreaterThan(0);
    for (const d of deployments) {
      const password = envOf(d).find((e) => e.name === 'KAFKA_SASL_PASSWORD');
      expect(password?.valueFrom?.secretKeyRef, d.metadata.name).toEqual({
        name: 'twofold',
        key: 'KAFKA_SASL_PASSWORD',
      });
      expect(volumesOf(d).find((v) => v.name === 'kafka-ca')?.secret?.secretName, d.metadata.name).toBe(
        'kafka-ca',
      );
      expect(mountsOf(d), d.metadata.name).toContainEqual(
        expect.objectContaining({ name: 'kafka-ca', mountPath: '/etc/twofold/kafka-ca' }),
      );
    }
    // The topics Job runs before install, when the release Secret does not exist yet: it reads the hook copy.
    const topics = ofKind(ms, 'Job').find((j) => j.metadata.name === 'twofold-topics')!;
    const env = Object.fromEntries(envOf(topics).map((e) => [e.name, e]));
    expect(env['KAFKA_SSL']?.value).toBe('true');
    expect(env['KAFKA_SSL_CA_FILE']?.value).toBe('/etc/twofold/kafka-ca/ca.crt');
    expect(env['KAFKA_SASL_MECHANISM']?.value).toBe('scram-sha-512');
    expect(env['KAFKA_SASL_USERNAME']?.value).toBe('twofold');
    expect(env['KAFKA_SASL_PASSWORD']?.valueFrom?.secretKeyRef).toEqual({
      name: 'twofold-hook',
      key: 'KAFKA_SASL_PASSWORD',
    });
    const hook = ofKind(ms, 'Secret').find((m) => m.metadata.name === 'twofold-hook')!;
    expect(Buffer.from(hook.data!['KAFKA_SASL_PASSWORD']!, 'base64').toString()).toBe('s3cret');
    expect(mountsOf(topics)).toContainEqual(expect.objectContaining({ name: 'kafka-ca' }));
  });

  it('keeps the hook Secret for the topics Job when migrations are off', async () => {
    const ms = await manifests([MINIMAL], [...SECURE, 'migrations.enabled=false']);
    expect(ofKind(ms, 'Secret').map((m) => m.metadata.name)).toContain('twofold-hook');
  });

  it('take the password from an existing Secret, required once a mechanism is set', async () => {
    const ms = await manifests(
      [MINIMAL],
      [
        'secrets.existingSecret=mine',
        'secrets.databaseUrl=',
        'secrets.redisUrl=',
        'secrets.masterKeys=',
        'secrets.adminKey=',
        'kafka.sasl.mechanism=plain',
        'kafka.sasl.username=twofold',
        'kafka.ssl.enabled=true',
      ],
    );
    for (const d of ofKind(ms, 'Deployment'))
      expect(envOf(d).find((e) => e.name === 'KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef).toEqual({
        name: 'mine',
        key: 'KAFKA_SASL_PASSWORD',
      });
    const topics = ofKind(ms, 'Job').find((j) => j.metadata.name === 'twofold-topics')!;
    expect(envOf(topics).find((e) => e.name === 'KAFKA_SASL_PASSWORD')?.valueFrom?.secretKeyRef?.name).toBe(
      'mine',
    );
  });
});

describe('extra volumes, mounts and environment (a private CA for Postgres and Redis TLS)', () => {
  const CA = tempFile(
    'ca-values.yaml',
    [
      'extraEnv:',
      '  - {name: NODE_EXTRA_CA_CERTS, value: /etc/twofold/ca/ca.crt}',
      '  - {name: TWOFOLD_TEST_MARK, value: global}',
      'extraEnvFrom:',
      '  - configMapRef: {name: proxy-settings}',
      'extraVolumes:',
      '  - {name: corp-ca, configMap: {name: corp-ca}}',
      'extraVolumeMounts:',
      '  - {name: corp-ca, mountPath: /etc/twofold/ca, readOnly: true}',
      'auditSink:',
      '  extraEnv:',
      '    - {name: TWOFOLD_TEST_MARK, value: audit-sink}',
      '  extraVolumes:',
      '    - {name: corp-ca, secret: {secretName: audit-ca}}',
      '    - {name: spool, emptyDir: {}}',
      '  extraVolumeMounts:',
      '    - {name: spool, mountPath: /spool}',
    ].join('\n'),
  );
  type Pod = PodSpec & {
    volumes?: { name: string; configMap?: { name: string }; secret?: { secretName: string } }[];
    containers: (Container & { envFrom?: { configMapRef?: { name: string } }[] })[];
  };

  it('reach every Deployment and both hook Jobs, so DATABASE_URL can name sslrootcert= and Node trust the CA', async () => {
    const ms = await manifests([MINIMAL, CA], ['webhookDelivery.enabled=true']);
    const pods = [...ofKind(ms, 'Deployment'), ...ofKind(ms, 'Job')];
    expect(pods.map((m) => m.metadata.name).sort()).toEqual(
      [
        'api',
        'audit-sink',
        'lockout-detector',
        'session-broadcaster',
        'verifier',
        'webhook-delivery',
        'migrate',
        'topics',
      ]
        .map((c) => `twofold-${c}`)
        .sort(),
    );
    for (const m of pods) {
      const where = `${m.kind}/${m.metadata.name}`;
      const pod = podOf(m) as Pod;
      const c = pod.containers[0]!;
      expect(c.env, where).toContainEqual({ name: 'NODE_EXTRA_CA_CERTS', value: '/etc/twofold/ca/ca.crt' });
      expect(c.envFrom, where).toContainEqual({ configMapRef: { name: 'proxy-settings' } });
      expect(c.volumeMounts, where).toContainEqual({
        name: 'corp-ca',
        mountPath: '/etc/twofold/ca',
        readOnly: true,
      });
      expect(c.volumeMounts, `${where}: keeps /tmp`).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
      expect(
        pod.volumes?.map((v) => v.name),
        where,
      ).toEqual(expect.arrayContaining(['tmp', 'corp-ca']));
      // Unique names: Kubernetes refuses a pod with two volumes of one name.
      const names = pod.volumes?.map((v) => v.name) ?? [];
      expect(new Set(names).size, `${where}: volume names unique`).toBe(names.length);
      const envNames = (c.env ?? []).map((e) => e.name);
      expect(new Set(envNames).size, `${where}: env names unique`).toBe(envNames.length);
    }
  });

  it("merge a service's own with the global ones, its entry winning on the same name", async () => {
    const ms = await manifests([MINIMAL, CA]);
    const byComponent = (c: string) => ofKind(ms, 'Deployment').find((d) => componentOf(d) === c)!;
    const sink = podOf(byComponent('audit-sink')) as Pod;
    expect(sink.volumes?.find((v) => v.name === 'corp-ca')).toEqual({
      name: 'corp-ca',
      secret: { secretName: 'audit-ca' },
    });
    expect(sink.volumes?.map((v) => v.name).sort()).toEqual(['corp-ca', 'spool', 'tmp']);
    expect(sink.containers[0]!.volumeMounts?.map((v) => v.mountPath).sort()).toEqual([
      '/etc/twofold/ca',
      '/spool',
      '/tmp',
    ]);
    const mark = (p: PodSpec) => p.containers[0]!.env?.filter((e) => e.name === 'TWOFOLD_TEST_MARK');
    expect(mark(sink)).toEqual([{ name: 'TWOFOLD_TEST_MARK', value: 'audit-sink' }]);
    const verifier = podOf(byComponent('verifier')) as Pod;
    expect(mark(verifier)).toEqual([{ name: 'TWOFOLD_TEST_MARK', value: 'global' }]);
    expect(verifier.volumes?.find((v) => v.name === 'corp-ca')).toEqual({
      name: 'corp-ca',
      configMap: { name: 'corp-ca' },
    });
  });
});

describe('the api Ingress', () => {
  const EXISTING = ciFile('existing-secret-values.yaml');
  interface IngressSpec {
    tls?: { hosts?: string[] }[];
    rules: {
      host: string;
      http: { paths: { path: string; pathType: string; backend: { service: { port: { name: string } } } }[] };
    }[];
  }
  const ingressOf = (ms: Manifest[]) => ofKind(ms, 'Ingress')[0]!.spec as unknown as IngressSpec;
  /** Whether a Prefix path routes a request path (Kubernetes matches whole path segments). */
  const routes = (prefix: string, path: string) => {
    const p = prefix.replace(/\/$/, '');
    return p === '' || path === p || path.startsWith(`${p}/`);
  };
  const routed = (spec: IngressSpec, path: string) =>
    spec.rules.every((r) => r.http.paths.some((x) => x.pathType === 'Prefix' && routes(x.path, path)));

  /** Every path the api serves, read from its route and page sources (`:param` as a sample value). */
  function apiPaths(): string[] {
    const files = [
      ...readdirSync(join(ROOT, 'services/api/src/routes')).map((f) => `routes/${f}`),
      ...readdirSync(join(ROOT, 'services/api/src/pages')).map((f) => `pages/${f}`),
    ].filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const found = new Set<string>();
    for (const f of files) {
      const source = readFileSync(join(ROOT, 'services/api/src', f), 'utf8');
      for (const m of source.matchAll(/['`](\/(?:v1|2fa|enroll|assets|healthz|readyz|metrics)[^'`\s]*)['`]/g))
        found.add(m[1]!.replace(/:[A-Za-z]+/g, 'x'));
    }
    return [...found, '/docs', '/docs/json'].sort();
  }
  const INTERNAL = ['/healthz', '/readyz', '/metrics'];
  const isAdmin = (p: string) => routes('/v1/admin', p);
  const isDocs = (p: string) => routes('/docs', p);

  it('finds the routes it checks against in the api sources', () => {
    const paths = apiPaths();
    for (const p of [
      '/v1/login-events',
      '/2fa/x',
      '/enroll/x',
      '/assets/twofold.css',
      '/metrics',
      '/v1/admin/apps',
    ])
      expect(paths).toContain(p);
  });

  it('routes, by default, every path apps and browsers use and none of the metrics, probes, admin API or /docs', async () => {
    const spec = ingressOf(await manifests([EXISTING]));
    expect(spec.rules.map((r) => r.host)).toEqual(['2fa.corp.example']);
    for (const r of spec.rules)
      for (const p of r.http.paths) expect(p.backend.service.port.name).toBe('http');
    for (const path of apiPaths()) {
      const expected = !INTERNAL.includes(path) && !isAdmin(path) && !isDocs(path);
      expect(routed(spec, path), path).toBe(expected);
    }
  });

  it('adds /v1/admin with exposeAdmin and /docs with exposeDocs, never the metrics or probes', async () => {
    const spec = ingressOf(
      await manifests([EXISTING], ['api.ingress.exposeAdmin=true', 'api.ingress.exposeDocs=true']),
    );
    for (const path of apiPaths()) expect(routed(spec, path), path).toBe(!INTERNAL.includes(path));
    const adminOnly = ingressOf(await manifests([EXISTING], ['api.ingress.exposeAdmin=true']));
    expect(routed(adminOnly, '/v1/admin/apps')).toBe(true);
    expect(routed(adminOnly, '/docs')).toBe(false);
  });

  it('routes the same paths on every host', async () => {
    const spec = ingressOf(
      await manifests(
        [EXISTING],
        ['api.ingress.hosts[0].host=2fa.corp.example', 'api.ingress.hosts[1].host=mfa.corp.example'],
      ),
    );
    expect(spec.rules.map((r) => r.host)).toEqual(['2fa.corp.example', 'mfa.corp.example']);
    expect(spec.rules[1]!.http.paths).toEqual(spec.rules[0]!.http.paths);
  });

  const publicUrl = (ms: Manifest[]) =>
    podOf(ofKind(ms, 'Deployment').find((d) => componentOf(d) === 'api')!).containers[0]!.env?.find(
      (e) => e.name === 'TWOFOLD_PUBLIC_URL',
    )?.value;
  const derived = ['api.publicUrl=', 'api.ingress.enabled=true', 'api.ingress.hosts[0].host=2fa.example.com'];

  it.each([
    [
      'without TLS: http, so the CSRF cookie is not Secure-only and no HSTS is sent',
      [],
      'http://2fa.example.com',
    ],
    [
      'with TLS for that host: https',
      ['api.ingress.tls[0].secretName=t', 'api.ingress.tls[0].hosts[0]=2fa.example.com'],
      'https://2fa.example.com',
    ],
    [
      'with a wildcard certificate covering it: https',
      ['api.ingress.tls[0].secretName=t', 'api.ingress.tls[0].hosts[0]=*.example.com'],
      'https://2fa.example.com',
    ],
    [
      'with TLS for another host only: http',
      ['api.ingress.tls[0].secretName=t', 'api.ingress.tls[0].hosts[0]=other.example.com'],
      'http://2fa.example.com',
    ],
  ])('derives the public URL from the first host %s', async (_name, set, url) => {
    expect(publicUrl(await manifests([MINIMAL], [...derived, ...set]))).toBe(url);
  });

  it('keeps an explicit api.publicUrl whatever the Ingress says', async () => {
    expect(publicUrl(await manifests([MINIMAL], ['api.ingress.enabled=true']))).toBe(
      'https://twofold.example.com',
    );
    expect(publicUrl(await manifests([MINIMAL], ['api.publicUrl=https://2fa.corp.example']))).toBe(
      'https://2fa.corp.example',
    );
  });
});

describe('NetworkPolicies', () => {
  const PROD = ciFile('production-values.yaml');
  interface PolicySpec {
    ingress: { ports: { port: string }[]; from?: Record<string, unknown>[] }[];
  }
  const policies = (ms: Manifest[]) =>
    new Map(ofKind(ms, 'NetworkPolicy').map((p) => [componentOf(p)!, p.spec as unknown as PolicySpec]));
  const INGRESS_NS = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
  };
  const MONITORING_NS = {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
  };

  it('admits the apiFrom and the metricsFrom peers on the api port (it serves /metrics), only metricsFrom elsewhere', async () => {
    const ps = policies(await manifests([PROD]));
    expect(ps.get('api')!.ingress).toEqual([
      { ports: [{ port: 'http', protocol: 'TCP' }], from: [INGRESS_NS, MONITORING_NS] },
    ]);
    for (const c of CONSUMERS)
      expect(ps.get(c)!.ingress, c).toEqual([
        { ports: [{ port: 'metrics', protocol: 'TCP' }], from: [MONITORING_NS] },
      ]);
  });

  it('keeps "metricsFrom empty: anyone" for the api too, so Prometheus can scrape it behind apiFrom', async () => {
    const open = tempFile('open-metrics.yaml', 'networkPolicy:\n  metricsFrom: []\n');
    const ps = policies(await manifests([PROD, open]));
    for (const [component, spec] of ps) {
      expect(spec.ingress, component).toHaveLength(1);
      expect(spec.ingress[0]!.from, `${component}: no from, anyone`).toBeUndefined();
    }
  });

  it('keeps "apiFrom empty: anyone" on the api port while the metrics ports stay narrowed', async () => {
    const open = tempFile('open-api.yaml', 'networkPolicy:\n  apiFrom: []\n');
    const ps = policies(await manifests([PROD, open]));
    expect(ps.get('api')!.ingress[0]!.from).toBeUndefined();
    expect(ps.get('verifier')!.ingress[0]!.from).toEqual([MONITORING_NS]);
  });
});

describe('README.md install example', () => {
  it('takes the master keys from an existing Secret, never generated on a helm command line', () => {
    const template = readFileSync(join(CHART, 'README.md.gotmpl'), 'utf8');
    const commands = [...template.matchAll(/^helm (?:install|upgrade)(?:[^\n]*\\\n)*[^\n]*/gm)].map(
      (m) => m[0],
    );
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      expect(command).toContain('secrets.existingSecret=');
      expect(command).not.toMatch(/\$\(openssl/);
      expect(command).not.toContain('secrets.masterKeys');
    }
  });
});

describe('values.schema.json', () => {
  it('rejects wrong types and unknown keys with a message naming each', async () => {
    const bad = tempFile(
      'bad-values.yaml',
      [
        'kafka:',
        '  brokers: kafka:9092', // a string, not a list
        'verifier:',
        '  replicas: three',
        'api:',
        '  port: 99999',
        'auditSink:',
        '  autoscaling:',
        '    maxReplica: 3', // a typo of maxReplicas
        '  retentionDays: 0',
        'sessionBroadcaster:',
        '  webhooks:',
        '    attempt: 3', // a typo of attempts
        'webhookDelivery:',
        '  keda:', // not a Kafka consumer
        '    enabled: true',
        'config:',
        '  logLevel: loud',
        'metrics:',
        '  serviceMonitor:',
        '    enabled: "yes"',
      ].join('\n'),
    );
    const r = await render([MINIMAL, bad]);
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain("values don't meet the specifications of the schema");
    expect(r.stderr).toMatch(/at '\/kafka\/brokers': got string, want array/);
    expect(r.stderr).toMatch(/at '\/verifier\/replicas': got string, want integer/);
    expect(r.stderr).toMatch(/at '\/api\/port': maximum: got 99,999, want 65,535/);
    expect(r.stderr).toMatch(/at '\/auditSink\/autoscaling': additional properties 'maxReplica' not allowed/);
    expect(r.stderr).toMatch(/at '\/auditSink\/retentionDays': minimum: got 0, want 1/);
    expect(r.stderr).toMatch(
      /at '\/sessionBroadcaster\/webhooks': additional properties 'attempt' not allowed/,
    );
    expect(r.stderr).toMatch(/at '\/webhookDelivery': additional properties 'keda' not allowed/);
    expect(r.stderr).toMatch(/at '\/config\/logLevel': value must be one of/);
    expect(r.stderr).toMatch(/at '\/metrics\/serviceMonitor\/enabled': got string, want boolean/);
  });
});

describe('templates/validate.yaml', () => {
  const contradictions: [string, string[], string][] = [
    [
      'an existing Secret and inline credentials',
      ['secrets.existingSecret=mine'],
      'secrets.existingSecret (mine) and secrets.databaseUrl are both set',
    ],
    [
      'an HPA and a KEDA ScaledObject on one service',
      ['verifier.keda.enabled=true'],
      'verifier: autoscaling.enabled and keda.enabled are both true',
    ],
    [
      'more consumer replicas than partitions',
      ['lockoutDetector.autoscaling.maxReplicas=13'],
      'lockoutDetector: up to 13 replicas but the topics have 12 partitions',
    ],
    [
      'a grace period not longer than the shutdown deadline',
      ['auditSink.terminationGracePeriodSeconds=20'],
      'auditSink: terminationGracePeriodSeconds (20 s) must be longer than config.shutdownTimeoutMs (20000 ms)',
    ],
    [
      'a grace period shorter than the preStop sleep plus the deadline',
      ['api.terminationGracePeriodSeconds=24'],
      'api: terminationGracePeriodSeconds (24 s) must be longer than preStopSleepSeconds (5 s) plus',
    ],
    [
      'an ingress without the api',
      ['api.enabled=false', 'api.ingress.enabled=true'],
      'api.ingress.enabled is true but api.enabled is false',
    ],
    [
      'an active key missing from the ring',
      ['config.activeKeyId=other'],
      'config.activeKeyId "other" is not in secrets.masterKeys',
    ],
    [
      'a master key of the wrong size',
      ['secrets.masterKeys=k2026:c2hvcnQ='],
      'secrets.masterKeys: entry "k2026:…" is not id:base64key',
    ],
    [
      'autoscaler minimum above maximum',
      ['api.autoscaling.minReplicas=11'],
      'api: autoscaling.minReplicas (11) is above autoscaling.maxReplicas (10)',
    ],
    [
      'a disruption budget that blocks every drain',
      [
        'verifier.autoscaling.enabled=false',
        'verifier.replicas=2',
        'verifier.podDisruptionBudget.maxUnavailable=null',
        'verifier.podDisruptionBudget.minAvailable=2',
      ],
      'verifier: podDisruptionBudget.minAvailable (2) is not below the fewest replicas (2)',
    ],
    [
      'both minAvailable and maxUnavailable',
      ['sessionBroadcaster.podDisruptionBudget.minAvailable=1'],
      'sessionBroadcaster: podDisruptionBudget.minAvailable and maxUnavailable are both set',
    ],
    [
      'webhook delivery without the session broadcaster',
      ['webhookDelivery.enabled=true', 'sessionBroadcaster.enabled=false'],
      'webhookDelivery.enabled is true but sessionBroadcaster.enabled is false',
    ],
    [
      'audit partitions written at once that leave no pool connection free',
      ['auditSink.concurrentPartitions=10'],
      'auditSink.concurrentPartitions (10) must be below database.poolSize (10)',
    ],
    [
      'a webhook delivery grace period not longer than the shutdown deadline',
      ['webhookDelivery.enabled=true', 'webhookDelivery.terminationGracePeriodSeconds=10'],
      'webhookDelivery: terminationGracePeriodSeconds (10 s) must be longer than config.shutdownTimeoutMs',
    ],
    [
      'an Ingress path that would publish the metrics and probes',
      ['api.ingress.enabled=true', 'api.ingress.paths={/}'],
      'api.ingress.paths: / would publish /metrics, /readyz, /healthz',
    ],
    [
      'an Ingress path that would publish the admin API while exposeAdmin is off',
      ['api.ingress.enabled=true', 'api.ingress.paths={/v1}'],
      'api.ingress.paths: /v1 would publish /v1/admin while api.ingress.exposeAdmin is false',
    ],
    [
      'the per-host paths of earlier chart versions (path / published everything)',
      [
        'api.ingress.enabled=true',
        'api.ingress.hosts[0].host=2fa.example.com',
        'api.ingress.hosts[0].paths[0].path=/',
        'api.ingress.hosts[0].paths[0].pathType=Prefix',
      ],
      'api.ingress.hosts[0].paths is not supported any more',
    ],
    [
      'a public URL derived from a wildcard ingress host',
      ['api.publicUrl=', 'api.ingress.enabled=true', 'api.ingress.hosts[0].host=*.example.com'],
      'api.ingress.hosts[0].host (*.example.com) is a wildcard and api.publicUrl is empty',
    ],
    [
      'a public URL with a trailing slash',
      ['api.publicUrl=https://2fa.example.com/'],
      'api.publicUrl (https://2fa.example.com/) ends with a slash',
    ],
    [
      'a wildcard public URL',
      ['api.publicUrl=https://*.example.com'],
      'api.publicUrl (https://*.example.com) holds a wildcard',
    ],
    [
      "an extra volume named like the chart's /tmp volume",
      ['verifier.extraVolumes[0].name=tmp', 'verifier.extraVolumes[0].emptyDir.medium=Memory'],
      "verifier.extraVolumes: a volume named tmp clashes with the chart's own /tmp volume",
    ],
    [
      'a SASL mechanism without a user name',
      ['kafka.sasl.mechanism=scram-sha-256', 'secrets.kafkaSaslPassword=p'],
      'kafka.sasl.mechanism is scram-sha-256 but kafka.sasl.username is empty',
    ],
    [
      'a SASL mechanism without a password',
      ['kafka.sasl.mechanism=plain', 'kafka.sasl.username=u'],
      'kafka.sasl.mechanism is plain but secrets.kafkaSaslPassword is empty',
    ],
    [
      'SASL credentials without a mechanism',
      ['kafka.sasl.username=u'],
      'kafka.sasl.username is set but kafka.sasl.mechanism is empty',
    ],
    [
      'a Kafka CA without TLS',
      ['kafka.ssl.caSecret=kafka-ca'],
      'kafka.ssl.caSecret (kafka-ca) is set but kafka.ssl.enabled is false',
    ],
    [
      'KEDA on a TLS Kafka without a TriggerAuthentication',
      ['kafka.ssl.enabled=true', 'verifier.autoscaling.enabled=false', 'verifier.keda.enabled=true'],
      'verifier: keda.enabled with Kafka TLS or SASL (kafka.ssl.enabled, kafka.sasl.mechanism) needs keda.triggerAuthenticationName',
    ],
    [
      'every service disabled',
      [
        'api.enabled=false',
        'verifier.enabled=false',
        'lockoutDetector.enabled=false',
        'sessionBroadcaster.enabled=false',
        'auditSink.enabled=false',
      ],
      'every service is disabled',
    ],
  ];

  it.each(contradictions)('rejects %s', async (_name, set, message) => {
    const r = await render([MINIMAL], set);
    expect(r.ok).toBe(false);
    expect(r.stderr).toContain('twofold: the values contradict themselves');
    expect(r.stderr).toContain(message);
  });
});

describe('README.md', () => {
  it('is generated from the comments in values.yaml (bash deploy/tools/chart-readme.sh)', async () => {
    const r = await attempt(helmDocs, [
      '--chart-search-root',
      CHART,
      '--template-files',
      'README.md.gotmpl',
      '--dry-run',
      '--log-level',
      'warning',
    ]);
    expect(r.ok, r.stderr).toBe(true);
    const readme = join(CHART, 'README.md');
    const options = (await prettier.resolveConfig(readme)) ?? {};
    const expected = await prettier.format(r.stdout, { ...options, filepath: readme });
    expect(readFileSync(readme, 'utf8'), 'README.md is stale: run bash deploy/tools/chart-readme.sh').toBe(
      expected,
    );
  });

  it('documents every value', () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    const rows = readme
      .split('\n')
      .filter((line) => /^\| [a-zA-Z]/.test(line) && line.split('|').length >= 6);
    const undocumented = rows
      .filter((line) => line.split('|')[4]?.trim() === '')
      .map((line) => line.split('|')[1]?.trim());
    expect(rows.length).toBeGreaterThan(100);
    expect(undocumented).toEqual([]);
  });
});
