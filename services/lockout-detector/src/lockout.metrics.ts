import { Counter, Histogram, type Registry } from '@twofold/telemetry';

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
  // Several detectors may share one registry (tests build them in one process).
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter<L>({ name, help, labelNames, registers: [registry] });
}

/** The detector's own metrics (names are what dashboards and alerts use). */
export function createLockoutMetrics(registry: Registry) {
  const detection = registry.getSingleMetric('twofold_lockout_detection_seconds');
  const steps = registry.getSingleMetric('twofold_lockout_step_seconds');
  return {
    imposed: counter(registry, 'twofold_lockouts_imposed_total', 'Lockouts imposed, by scope and rule', [
      'scope',
      'rule',
    ]),
    lifted: counter(registry, 'twofold_lockouts_lifted_total', 'Lockouts lifted, by scope and by whom', [
      'scope',
      'by',
    ]),
    attacks: counter(registry, 'twofold_attacks_detected_total', 'Attacks detected, by kind', ['kind']),
    failures: counter(
      registry,
      'twofold_lockout_failures_total',
      'Failed logins and codes read, by topic and outcome (counted, duplicate: already counted)',
      ['topic', 'outcome'],
    ),
    timeAdjusted: counter(
      registry,
      'twofold_lockout_event_time_adjusted_total',
      'Events counted at the broker time because their own time was absurd (future, past)',
      ['adjustment'],
    ),
    detection: (detection ??
      new Histogram({
        name: 'twofold_lockout_detection_seconds',
        help: 'From the broker time of the failure that crossed a threshold to the lockout stored',
        labelNames: ['scope'],
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry],
      })) as Histogram<'scope'>,
    steps: (steps ??
      new Histogram({
        name: 'twofold_lockout_step_seconds',
        help: 'Time of each step of a batch: count (Redis), decide, impose (Redis), schedule (BullMQ), publish (Kafka)',
        labelNames: ['step'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers: [registry],
      })) as Histogram<'step'>,
  };
}
export type LockoutMetrics = ReturnType<typeof createLockoutMetrics>;
