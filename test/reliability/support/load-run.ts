// One reliability run: a world (on the stack, or on private Kafka / Postgres / Redis given in
// `env`), every service as a real process, the scenario published at a steady rate with
// faults at given moments, then drained and checked. Each test file differs only in its
// faults and in what it asserts of the outcome.
import { createPool, type Pool } from '@twofold/store';
import { apiClient, type ServiceName } from '../../support/services.js';
import type { Isolated } from '../../support/stack.js';
import { drained, sessionsVerified, stored, topicDuplicates, type Stored } from './checks.js';
import { publishScenario, scenarioIds, type Scenario } from './scenario.js';
import { startServiceSet, stopServiceSet, type Exit, type ServiceProcess } from './service-process.js';
import { isolatedWorld } from './world.js';

export const ALL_SERVICES: readonly ServiceName[] = [
  'verifier',
  'lockout-detector',
  'session-broadcaster',
  'audit-sink',
  'api',
];

export interface RunContext {
  world: Isolated;
  services: Map<ServiceName, ServiceProcess>;
  /** The key of app `jira` (for sessions/current and login events through the api). */
  jiraKey: string;
}

export interface Fault {
  /** Seconds into the load when it starts. */
  atSecond: number;
  run(ctx: RunContext): Promise<unknown>;
}

export interface RunOptions {
  scenario: Scenario;
  /** Events per second. */
  rate: number;
  faults?: readonly Fault[];
  /** Settings over the stack's (private Kafka, Postgres or Redis). */
  env?: Record<string, string>;
  /** Called once the load and the faults are done, before the drain. */
  afterLoad?(ctx: RunContext): Promise<void>;
  /** Called after the drain, with a pool on the world's schema; its answer is `inspected`. */
  inspect?(ctx: RunContext, pool: Pool): Promise<unknown>;
  drainTimeoutMs?: number;
}

export interface RunOutcome {
  stored: Stored;
  /** Whether each of scenario.verifiedTokens / unverifiedTokens reads as verified. */
  verified: boolean[];
  unverified: boolean[];
  /** Messages on each output topic whose event id was already there (work redone). */
  redone: Record<string, number>;
  /** What each fault returned, in order. */
  faults: unknown[];
  inspected: unknown;
  /** SIGTERM exits at the end. */
  exits: Map<ServiceName, Exit>;
  loadSeconds: number;
  drainSeconds: number;
}

export async function runUnderLoad(name: string, options: RunOptions): Promise<RunOutcome> {
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    const world = await isolatedWorld(name, { database: true, env: options.env ?? {}, logLevel: 'silent' });
    cleanups.push(() => world.cleanup());
    const services = await startServiceSet(world, ALL_SERVICES);
    cleanups.push(() => stopServiceSet(services));
    const api = services.get('api')!;
    const admin = apiClient(api.url, world.env['TWOFOLD_ADMIN_KEY']);
    const jira = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
    if (jira.status !== 201) throw new Error(`register jira: ${jira.status} ${JSON.stringify(jira.body)}`);
    await admin('POST', '/v1/admin/apps', { appId: 'confluence' });
    const ctx: RunContext = { world, services, jiraKey: jira.body.key };

    const pending = [...(options.faults ?? [])].sort((a, b) => a.atSecond - b.atSecond);
    const running: Promise<unknown>[] = [];
    const loadStarted = Date.now();
    await publishScenario(world.producer, options.scenario, options.rate, (elapsed) => {
      while (pending.length > 0 && elapsed >= pending[0]!.atSecond) running.push(pending.shift()!.run(ctx));
    });
    // Faults scheduled past the end of the load still run.
    for (const fault of pending) running.push(fault.run(ctx));
    const faults = await Promise.all(running);
    await options.afterLoad?.(ctx);
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    const drainStarted = Date.now();
    await drained(world, options.drainTimeoutMs);
    // The broadcaster has consumed the logouts; give its Redis writes a moment to land.
    await new Promise((r) => setTimeout(r, 1_000));
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    const pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
    cleanups.push(() => pool.end());
    const outcome = {
      stored: await stored(pool, scenarioIds(options.scenario)),
      verified: await sessionsVerified(api.url, ctx.jiraKey, options.scenario.verifiedTokens),
      unverified: await sessionsVerified(api.url, ctx.jiraKey, options.scenario.unverifiedTokens),
      redone: await topicDuplicates(world, ['secondFactor', 'security', 'session']),
      faults,
      inspected: await options.inspect?.(ctx, pool),
      loadSeconds,
      drainSeconds,
    };
    return { ...outcome, exits: await stopServiceSet(services) };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

/** A short summary of a run for the test's printed line. */
export function summary(outcome: RunOutcome) {
  const { lockouts, ...counts } = outcome.stored;
  return {
    ...counts,
    lockouts: lockouts.length,
    verified: outcome.verified.filter(Boolean).length,
    unverifiedReadAsVerified: outcome.unverified.filter(Boolean).length,
    redone: outcome.redone,
    loadSeconds: Math.round(outcome.loadSeconds),
    drainSeconds: Math.round(outcome.drainSeconds),
  };
}
