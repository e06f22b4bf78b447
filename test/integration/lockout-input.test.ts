// Bad input never crashes the detector or miscounts silently: events without a usable IP
// go to the DLQ with the reason; absurd timestamps are counted at the broker's time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, createEvent } from '@twofold/contracts';
import { resolveLockoutRules } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';
import { eventually, type Isolated } from '../support/stack.js';
import { detectorCaughtUp, startDetectorWorld, type DetectorWorld } from './lockout-support.js';
import { readTopic } from '../support/topic-reader.js';

// A (user, IP) window of 2 s, so "long ago" and "far ahead" are seen within a test.
const rules = resolveLockoutRules({
  userIp: { windowSeconds: 2, failures: 5, lockSeconds: 60, maxLockSeconds: 60 },
});
let started: DetectorWorld;
let world: Isolated;
let redis: Redis;
let dlq: Awaited<ReturnType<typeof readTopic>>;
const groupId = () => started.groupId;

beforeAll(async () => {
  started = await startDetectorWorld('lockout-input', rules);
  ({ world, redis } = started);
  dlq = await readTopic(world.kafka, world.topics.dlq);
});

afterAll(async () => {
  await dlq?.stop();
  await started?.stop();
});

const caughtUp = () => detectorCaughtUp(world, groupId());
const failed = (username: string, ip: string, time?: string) =>
  createEvent(
    'twofold.login.failed',
    'app/jira',
    username,
    { appId: 'jira', ip, reason: 'bad_password' },
    time ? { time } : {},
  );
const locked = async (username: string, ip: string) =>
  (await readLockState(redis, world.config.redis.keyPrefix, username, ip)).userIpLock !== null;
const adjusted = async (adjustment: string) =>
  (
    await world.metrics.registry.getSingleMetric('twofold_lockout_event_time_adjusted_total')!.get()
  ).values.find((v) => v.labels['adjustment'] === adjustment)?.value ?? 0;

describe('bad input', () => {
  it('sends failures without an IP, or with one that does not parse, to the DLQ and counts the next good one', async () => {
    const good = failed('dlq-user', '192.0.2.44');
    const noIp = { ...failed('dlq-user', '192.0.2.44'), data: { appId: 'jira', reason: 'bad_password' } };
    const badIp = {
      ...failed('dlq-user', '192.0.2.44'),
      data: { appId: 'jira', ip: '300.1.2.3', reason: 'bad_password' },
    };
    await world.producer.sendRaw(world.topics.login, [
      { key: 'dlq-user', value: JSON.stringify(noIp) },
      { key: 'dlq-user', value: JSON.stringify(badIp) },
      { key: 'dlq-user', value: JSON.stringify(good) },
    ]);
    const dead = await eventually(
      async () => (dlq.messages.length >= 2 ? dlq.messages : undefined),
      30_000,
      'two DLQ messages',
    );
    expect(dead.map((m) => m.headers[DLQ_HEADERS.error])).toEqual([
      'data.ip is required',
      'data.ip must match format "ip"',
    ]);
    expect(dead.every((m) => m.headers[DLQ_HEADERS.consumer] === groupId())).toBe(true);
    await caughtUp();
    expect(await redis.zcard(`${world.config.redis.keyPrefix}lo:{u:dlq-user}:streak`)).toBe(1);
  });

  it('counts failures dated far in the future at the broker time: they leave the window like any other', async () => {
    const ip = '198.51.100.60';
    const before = await adjusted('future');
    await world.producer.publish(
      'login',
      Array.from({ length: 4 }, () => failed('future', ip, '2099-01-01T00:00:00.000Z')),
    );
    await caughtUp();
    expect(await adjusted('future')).toBe(before + 4);
    const scores = await redis.zrange(
      `${world.config.redis.keyPrefix}lo:{u:future}:pair:${ip}`,
      0,
      -1,
      'WITHSCORES',
    );
    expect(Number(scores[1])).toBeLessThanOrEqual(Date.now());
    // Dated 2099 they would stay in every window and lock the pair at the next failure.
    await new Promise((r) => setTimeout(r, 2_100));
    await world.producer.publish('login', [failed('future', ip)]);
    await caughtUp();
    expect(await locked('future', ip)).toBe(false);
  });

  it('counts failures dated far in the past at the broker time: they are not silently dropped', async () => {
    const ip = '198.51.100.61';
    const before = await adjusted('past');
    await world.producer.publish(
      'login',
      Array.from({ length: 4 }, () => failed('past', ip, '1990-01-01T00:00:00.000Z')),
    );
    await world.producer.publish('login', [failed('past', ip)]);
    await caughtUp();
    expect(await adjusted('past')).toBe(before + 4);
    // Dated 1990 they would have been out of the window: no lock at the fifth.
    expect(await locked('past', ip)).toBe(true);
  });
});
