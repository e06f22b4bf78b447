// The targets of the issues (2-core machine, everything on it), and how each pipeline figure
// relates to the baseline of the part underneath it.

export interface Target {
  issue: number;
  what: string;
  bench: string;
  figure: string;
  op: '<' | '>=';
  value: number;
  unit: string;
}

export const TARGETS: readonly Target[] = [
  {
    issue: 3,
    what: 'login decision p99 at 1,000 logins/s',
    bench: 'verifier',
    figure: 'decision_p99_ms',
    op: '<',
    value: 25,
    unit: 'ms',
  },
  {
    issue: 3,
    what: 'code verifications per second (HTTP)',
    bench: 'verifier',
    figure: 'verify_http_per_s',
    op: '>=',
    value: 5_000,
    unit: '/s',
  },
  {
    issue: 4,
    what: 'failures per second sustained by the lockout detector',
    bench: 'lockout',
    figure: 'failures_per_s_sustained',
    op: '>=',
    value: 20_000,
    unit: '/s',
  },
  {
    issue: 4,
    what: 'detection p99 under the target load',
    bench: 'lockout',
    figure: 'target_detection_p99_ms',
    op: '<',
    value: 250,
    unit: 'ms',
  },
  {
    issue: 5,
    what: '(a) session state via the api p99 at 500 verifications/s',
    bench: 'session',
    figure: 'a_state_api_p99_ms',
    op: '<',
    value: 50,
    unit: 'ms',
  },
  {
    issue: 5,
    what: '(b) webhook p99 at 500 verifications/s',
    bench: 'session',
    figure: 'b_webhook_p99_ms',
    op: '<',
    value: 100,
    unit: 'ms',
  },
  {
    issue: 5,
    what: '(c) SSE p99 at 500 verifications/s',
    bench: 'session',
    figure: 'c_sse_p99_ms',
    op: '<',
    value: 100,
    unit: 'ms',
  },
  {
    issue: 6,
    what: 'audit rows per second into Postgres',
    bench: 'audit-sink',
    figure: 'backlog_rows_per_s',
    op: '>=',
    value: 50_000,
    unit: '/s',
  },
  {
    issue: 6,
    what: 'audit lag p99 at 10,000 events/s',
    bench: 'audit-sink',
    figure: 'lag_p99_ms',
    op: '<',
    value: 2_000,
    unit: 'ms',
  },
  {
    issue: 9,
    what: 'login events per second sustained end to end (decided, counted, stored, lag < 2 s)',
    bench: 'e2e',
    figure: 'sustained_events_per_s',
    op: '>=',
    value: 20_000,
    unit: '/s',
  },
  {
    issue: 9,
    what: 'decision p99 at 1,000 interactive logins/s during the load',
    bench: 'e2e',
    figure: 'interactive_decision_p99_ms',
    op: '<',
    value: 25,
    unit: 'ms',
  },
];

export interface Ratio {
  what: string;
  bench: string;
  figure: string;
  baseline: string;
  /** Baseline figure, `part.figure` (e.g. `kafka.produce_records_per_s`). */
  baselineFigure: string;
  /** How the baseline is scaled before dividing (e.g. 2 hops of Kafka). */
  baselineFactor?: number;
  /** `throughput`: figure ÷ baseline (share of the limit used); `latency`: figure ÷ baseline (times the floor). */
  kind: 'throughput' | 'latency';
}

export const RATIOS: readonly Ratio[] = [
  {
    what: 'end-to-end events/s ÷ raw Kafka produce of the same size',
    bench: 'e2e',
    figure: 'sustained_events_per_s',
    baseline: 'Kafka ProducerPerformance',
    baselineFigure: 'kafka.produce_records_per_s',
    kind: 'throughput',
  },
  {
    what: 'end-to-end events/s ÷ raw Kafka consume',
    bench: 'e2e',
    figure: 'sustained_events_per_s',
    baseline: 'Kafka ConsumerPerformance',
    baselineFigure: 'kafka.consume_records_per_s',
    kind: 'throughput',
  },
  {
    what: 'end-to-end interactive decision p50 ÷ two Kafka hops p50',
    bench: 'e2e',
    figure: 'interactive_decision_p50_ms',
    baseline: 'Kafka EndToEndLatency ×2',
    baselineFigure: 'kafka.hop_p50_ms',
    baselineFactor: 2,
    kind: 'latency',
  },
  {
    what: 'end-to-end interactive decision p99 ÷ two Kafka hops p99',
    bench: 'e2e',
    figure: 'interactive_decision_p99_ms',
    baseline: 'Kafka EndToEndLatency ×2',
    baselineFigure: 'kafka.hop_p99_ms',
    baselineFactor: 2,
    kind: 'latency',
  },
  {
    what: 'decision p50 ÷ two Kafka hops p50',
    bench: 'verifier',
    figure: 'decision_p50_ms',
    baseline: 'Kafka EndToEndLatency ×2',
    baselineFigure: 'kafka.hop_p50_ms',
    baselineFactor: 2,
    kind: 'latency',
  },
  {
    what: 'decision p99 ÷ two Kafka hops p99',
    bench: 'verifier',
    figure: 'decision_p99_ms',
    baseline: 'Kafka EndToEndLatency ×2',
    baselineFigure: 'kafka.hop_p99_ms',
    baselineFactor: 2,
    kind: 'latency',
  },
  {
    what: 'verifications/s ÷ Redis Lua script calls/s',
    bench: 'verifier',
    figure: 'verify_http_per_s',
    baseline: 'redis-benchmark EVAL',
    baselineFigure: 'redis.lua_script_ops_per_s',
    kind: 'throughput',
  },
  {
    what: 'lockout failures/s ÷ raw Kafka consume',
    bench: 'lockout',
    figure: 'failures_per_s_sustained',
    baseline: 'Kafka ConsumerPerformance',
    baselineFigure: 'kafka.consume_records_per_s',
    kind: 'throughput',
  },
  {
    what: 'lockout failures/s ÷ Redis pipelined SET/s',
    bench: 'lockout',
    figure: 'failures_per_s_sustained',
    baseline: 'redis-benchmark SET -P 16',
    baselineFigure: 'redis.set_pipelined_ops_per_s',
    kind: 'throughput',
  },
  {
    what: 'audit rows/s ÷ plain multi-row insert rows/s',
    bench: 'audit-sink',
    figure: 'backlog_rows_per_s',
    baseline: 'pgbench 500-row INSERT',
    baselineFigure: 'postgres.insert_rows_per_s',
    kind: 'throughput',
  },
  {
    what: 'audit lag p99 at 10,000 events/s ÷ one Kafka hop p99',
    bench: 'audit-sink',
    figure: 'lag_p99_ms',
    baseline: 'Kafka EndToEndLatency',
    baselineFigure: 'kafka.hop_p99_ms',
    kind: 'latency',
  },
  {
    what: 'lockout detection p99 ÷ one Kafka hop p99',
    bench: 'lockout',
    figure: 'target_detection_p99_ms',
    baseline: 'Kafka EndToEndLatency',
    baselineFigure: 'kafka.hop_p99_ms',
    kind: 'latency',
  },
  {
    what: 'session state p50 ÷ one Kafka hop p50',
    bench: 'session',
    figure: 'a_state_api_p50_ms',
    baseline: 'Kafka EndToEndLatency',
    baselineFigure: 'kafka.hop_p50_ms',
    kind: 'latency',
  },
  {
    what: 'sessions/current requests/s ÷ Redis SET/s (one round trip each)',
    bench: 'api',
    figure: 'sessions_current_rps',
    baseline: 'redis-benchmark SET',
    baselineFigure: 'redis.set_ops_per_s',
    kind: 'throughput',
  },
];

export function meets(target: Target, value: number | undefined): boolean | undefined {
  if (value === undefined || !Number.isFinite(value)) return undefined;
  return target.op === '<' ? value < target.value : value >= target.value;
}
