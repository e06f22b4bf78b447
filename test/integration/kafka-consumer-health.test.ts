// What SREs see of a consumer group that stops moving: the lag gauge keeps measuring while a
// batch is retried for good, and a consumer kafkajs will not restart fails liveness (in the
// runner, and in every consumer service's composition root), so Kubernetes restarts the pod.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { AssignerProtocol, createBatchConsumer, type Kafka } from '@twofold/kafka';
import { consumerLiveness, createServiceMetrics, startHealthServer } from '@twofold/telemetry';
import { freePort } from '../support/services.js';
import { REPO_ROOT, eventually, isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
beforeAll(async () => {
  world = await isolated('consumer-health', { database: true });
});
afterAll(async () => {
  await world?.cleanup();
});

const logins = (n: number) =>
  Array.from({ length: n }, (_, i) =>
    createEvent('twofold.login.failed', 'app/jira', `lag-user-${i}`, {
      appId: 'jira',
      ip: '192.0.2.1',
      reason: 'bad_password',
    }),
  );

async function lagOf(metrics: ReturnType<typeof createServiceMetrics>, group: string, topic: string) {
  const { values } = await metrics.consumerLag.get();
  const mine = values.filter((v) => v.labels.group === group && v.labels.topic === topic);
  return { partitions: mine.length, total: mine.reduce((sum, v) => sum + v.value, 0) };
}

/**
 * A member of the group whose only partition assigner is one kafkajs's default never
 * offers: the broker refuses any other member's join with INCONSISTENT_GROUP_PROTOCOL, a
 * non-retriable error, so that member's consumer crashes with restart: false.
 */
async function occupyGroup(kafka: Kafka, groupId: string, topic: string) {
  const name = 'TwofoldTestForeignAssigner';
  const member = kafka.consumer({
    groupId,
    partitionAssigners: [
      () => ({
        name,
        version: 1,
        assign: async ({ members }) =>
          members.map((m) => ({
            memberId: m.memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 1,
              assignment: {},
              userData: Buffer.alloc(0),
            }),
          })),
        protocol: ({ topics }) => ({
          name,
          metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
        }),
      }),
    ],
  });
  const joined = new Promise<void>((resolve) => member.on(member.events.GROUP_JOIN, () => resolve()));
  await member.connect();
  await member.subscribe({ topics: [topic] });
  await member.run({ eachMessage: async () => undefined });
  await joined;
  return member;
}

describe('consumer lag while a batch is retried', () => {
  it('reports the lag of a group whose handler keeps failing, within the timer period', async () => {
    const metrics = createServiceMetrics('lag-test');
    const groupId = `${world.config.kafka.groupPrefix}stalled`;
    let failing = true;
    const consumer = createBatchConsumer({
      kafka: world.kafka,
      groupId,
      roles: ['login'],
      producer: world.producer,
      logger: world.logger,
      metrics,
      maxRetryDelayMs: 200,
      lagIntervalMs: 500,
      handle: async () => {
        if (failing) throw new Error('Postgres is down (test)');
      },
    });
    await consumer.start();
    try {
      const events = logins(30);
      await world.producer.publish('login', events);
      // Nothing is ever committed while the handler fails: the gauge must still show all 30.
      await eventually(
        async () => ((await lagOf(metrics, groupId, world.topics.login)).total === 30 ? true : undefined),
        10_000,
        'the lag gauge to show the 30 unhandled events',
      );
      expect((await lagOf(metrics, groupId, world.topics.login)).partitions).toBe(3);
      // Once the handler works again the group catches up and the gauge says so.
      failing = false;
      await eventually(
        async () => ((await lagOf(metrics, groupId, world.topics.login)).total === 0 ? true : undefined),
        20_000,
        'the lag gauge to drop to 0',
      );
    } finally {
      failing = false;
      await consumer.stop();
    }
  });
});

describe('a consumer that crashed without a restart', () => {
  it('marks its group crashed, and /healthz answers 503 through consumerLiveness', async () => {
    const metrics = createServiceMetrics('crash-test');
    const groupId = `${world.config.kafka.groupPrefix}crashing`;
    const occupant = await occupyGroup(world.kafka, groupId, world.topics.login);
    const consumer = createBatchConsumer({
      kafka: world.kafka,
      groupId,
      roles: ['login'],
      producer: world.producer,
      logger: world.logger,
      metrics,
      handle: async () => undefined,
    });
    const health = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      registry: metrics.registry,
      readiness: async () => ({ kafka: consumer.isReady() }),
      liveness: consumerLiveness(metrics),
      logger: world.logger,
    });
    try {
      const healthz = () => fetch(`http://127.0.0.1:${health.port}/healthz`);
      expect((await healthz()).status).toBe(200);
      await consumer.start();
      await eventually(
        async () => ((await healthz()).status === 503 ? true : undefined),
        15_000,
        '/healthz to fail',
      );
      const body = (await (await healthz()).json()) as { checks: Record<string, boolean> };
      expect(body.checks).toEqual({ [`kafka consumer ${groupId}`]: false });
      expect((await metrics.consumerCrashed.get()).values).toEqual([
        expect.objectContaining({ labels: { group: groupId }, value: 1 }),
      ]);
      expect(consumer.isReady()).toBe(false);
    } finally {
      await health.close();
      await consumer.stop().catch(() => undefined);
      await occupant.disconnect();
    }
  });

  const services = ['verifier', 'lockout-detector', 'session-broadcaster', 'audit-sink'] as const;

  it.each(services)(
    '%s: its /healthz fails once its consumer crashed for good',
    async (service) => {
      const groupId = `${world.config.kafka.groupPrefix}twofold-${service}`;
      const occupant = await occupyGroup(world.kafka, groupId, world.topics.login);
      const port = await freePort();
      const child: ChildProcess = spawn(
        process.execPath,
        ['--conditions=twofold-source', '--import', 'tsx', `services/${service}/src/main.ts`],
        {
          cwd: REPO_ROOT,
          env: { ...world.env, METRICS_PORT: String(port), LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      try {
        const status = await eventually(
          async () => {
            if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${stderr}`);
            const res = await fetch(`http://127.0.0.1:${port}/healthz`);
            return res.status === 503 ? res.status : undefined;
          },
          45_000,
          `${service} /healthz to fail`,
        );
        expect(status).toBe(503);
      } finally {
        if (child.exitCode === null) {
          child.kill('SIGTERM');
          await once(child, 'exit');
        }
        await occupant.disconnect();
      }
    },
    90_000,
  );
});
