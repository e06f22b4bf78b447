// The Grafana dashboard and the PrometheusRule ask only for metrics the services export,
// so a renamed metric cannot leave a panel or an alert silently empty.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { attempt, CHART, ensureTools, parseManifests, ROOT, TOOL_BUILD_TIMEOUT } from './tools.js';

/** What the services export (libs/telemetry and the services), histograms with their series. */
const EXPORTED = new Set([
  'twofold_kafka_consumer_lag',
  'twofold_kafka_messages_total',
  'twofold_dlq_messages_total',
  'twofold_kafka_batch_duration_seconds_bucket',
  'twofold_decisions_total',
  'twofold_decision_latency_seconds_bucket',
  'twofold_lockouts_imposed_total',
  'twofold_http_requests_total',
  'twofold_http_request_duration_seconds_bucket',
  // prom-client's default metrics, registered with the twofold_ prefix.
  'twofold_process_cpu_seconds_total',
  'twofold_process_resident_memory_bytes',
  'twofold_process_start_time_seconds',
  'twofold_nodejs_eventloop_lag_p99_seconds',
  // Prometheus' own scrape health.
  'up',
]);

const metricsIn = (expr: string) =>
  [...expr.replace(/"[^"]*"/g, '""').matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=\{|\[|\)|$)/g)]
    .map((m) => m[1]!)
    .filter((name) => name.startsWith('twofold_') || name === 'up');

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
}

describe('docs/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'docs/grafana-dashboard.json'), 'utf8')) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string }[] };
  };
  const graphs = dashboard.panels.filter((p) => p.type !== 'row');

  it('has panels with unique ids, each with a query, over a data source and namespace variable', () => {
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(graphs.length).toBeGreaterThanOrEqual(15);
    for (const p of graphs) expect(p.targets?.length, p.title).toBeGreaterThan(0);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace']);
  });

  it('queries only exported metrics, each filtered by namespace', () => {
    for (const p of graphs) {
      for (const { expr } of p.targets ?? []) {
        const names = metricsIn(expr);
        expect(names.length, `${p.title}: ${expr}`).toBeGreaterThan(0);
        for (const name of names) expect(EXPORTED.has(name), `${p.title}: ${name}`).toBe(true);
        expect(expr, p.title).toContain('namespace=~"$namespace"');
      }
    }
  });

  it('shows every exported twofold metric somewhere', () => {
    const used = new Set(graphs.flatMap((p) => (p.targets ?? []).flatMap((t) => metricsIn(t.expr))));
    const missing = [...EXPORTED].filter(
      (m) => m !== 'up' && m !== 'twofold_process_start_time_seconds' && !used.has(m),
    );
    expect(missing).toEqual([]);
  });
});

describe('the PrometheusRule', () => {
  let helm = '';
  beforeAll(async () => {
    ({ helm = '' } = await ensureTools('helm'));
  }, TOOL_BUILD_TIMEOUT);

  it('alerts on lag, DLQ growth, lockout spikes and error rate, over exported metrics only', async () => {
    const r = await attempt(helm, [
      'template',
      'twofold',
      CHART,
      '--values',
      join(CHART, 'ci/minimal-values.yaml'),
      '--set',
      'metrics.prometheusRule.enabled=true',
      '--show-only',
      'templates/prometheusrule.yaml',
    ]);
    expect(r.ok, r.stderr).toBe(true);
    const [rule] = parseManifests(r.stdout);
    const rules = (
      rule?.spec as {
        groups: { rules: { alert: string; expr: string; annotations: Record<string, string> }[] }[];
      }
    ).groups[0]!.rules;
    const alerts = rules.map((x) => x.alert);
    for (const expected of [
      'TwofoldConsumerLagHigh',
      'TwofoldDeadLettersGrowing',
      'TwofoldLockoutSpike',
      'TwofoldApiErrorRate',
    ]) {
      expect(alerts).toContain(expected);
    }
    // A pod not ready (Redis down) answers its probes 503: they are not apps' requests.
    const errorRate = rules.find((x) => x.alert === 'TwofoldApiErrorRate')!.expr;
    expect(errorRate.match(/route!~"\/readyz\|\/healthz\|\/metrics"/g), errorRate).toHaveLength(2);
    const runbook = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8');
    for (const x of rules) {
      for (const name of metricsIn(x.expr)) expect(EXPORTED.has(name), `${x.alert}: ${name}`).toBe(true);
      // Every alert says where its runbook is, and that section exists.
      expect(x.annotations['runbook'], x.alert).toBe(`docs/operations.md#${x.alert.toLowerCase()}`);
      expect(runbook, x.alert).toContain(`### ${x.alert}\n`);
      expect(x.annotations['summary'], x.alert).toBeTruthy();
    }
  });
});
