// Issue 4: the lockout thresholds are adjustable through the admin policy. The api and the
// lockout detector run as processes (their real main.ts) in an isolated world with its own
// Postgres schema; a threshold changed with PUT /v1/admin/policy reaches the running
// detector through the policy version it polls.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvent } from '@twofold/contracts';
import { createRedis, waitForRedis, type Redis } from '@twofold/redis';
import { readLockState } from '@twofold/state';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { detectorCaughtUp } from './lockout-support.js';

let world: Isolated;
let services: RunningServices;
let redis: Redis;
const admin = () => apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
const groupId = () => `${world.config.kafka.groupPrefix}twofold-lockout-detector`;

beforeAll(async () => {
  world = await isolated('lockout-policy', { database: true });
  services = await startServices(world, ['api', 'lockout-detector']);
  redis = createRedis(world.config.redis.url, 'state', { commandTimeout: 5_000 });
  await waitForRedis(redis);
});

afterAll(async () => {
  const codes = await services?.stop();
  if (redis) {
    const keys = await redis.keys(`${world.config.redis.keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }
  await world?.cleanup();
  for (const [name, code] of codes ?? []) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

let pairs = 0;
/** `n` failures of a fresh (user, IP) pair, once the detector has read them all. */
async function failPair(n: number): Promise<{ username: string; ip: string }> {
  pairs++;
  const username = `policy-user-${pairs}`;
  const ip = `198.51.100.${pairs % 250}`;
  await world.producer.publish(
    'login',
    Array.from({ length: n }, () =>
      createEvent('twofold.login.failed', 'app/jira', username, {
        appId: 'jira',
        ip,
        reason: 'bad_password',
      }),
    ),
  );
  await detectorCaughtUp(world, groupId());
  return { username, ip };
}
const pairLocked = async ({ username, ip }: { username: string; ip: string }) =>
  (await readLockState(redis, world.config.redis.keyPrefix, username, ip)).userIpLock !== null;

describe('lockout thresholds from the admin policy', () => {
  it('with the default policy, 3 failures of a (user, IP) pair do not lock it and 5 do', async () => {
    expect(await pairLocked(await failPair(3))).toBe(false);
    const five = await failPair(5);
    await eventually(async () => ((await pairLocked(five)) ? true : undefined), 20_000, 'pair locked');
  });

  it('a threshold lowered through PUT /v1/admin/policy applies in the running detector', async () => {
    const put = await admin()('PUT', '/v1/admin/policy', { lockout: { userIp: { failures: 3 } } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    expect(put.body).toMatchObject({ settings: { lockout: { userIp: { failures: 3 } } } });
    const changedAt = Date.now();
    // Each try is a fresh pair: under the old threshold 3 failures never lock, so a lock
    // proves the new one is in force.
    await eventually(async () => ((await pairLocked(await failPair(3))) ? true : undefined), 30_000);
    world.logger.info({ ms: Date.now() - changedAt }, 'lowered threshold in force');
    const get = await admin()<{ settings: { lockout: unknown } }>('GET', '/v1/admin/policy');
    expect(get.body.settings.lockout).toEqual({ userIp: { failures: 3 } });
  });

  it('thresholds the detector would refuse are refused by the api with the reason, and change nothing', async () => {
    const tooLow = await admin()<{ detail: string }>('PUT', '/v1/admin/policy', {
      lockout: { userIp: { failures: 0 } },
    });
    expect(tooLow.status).toBe(400);
    expect(tooLow.body.detail).toContain('userIp.failures must be at least 1');
    const unknown = await admin()<{ detail: string }>('PUT', '/v1/admin/policy', {
      lockout: { userIp: { attempts: 3 } },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toContain('unknown rule "userIp.attempts"');
    const beyondNist = await admin()<{ detail: string }>('PUT', '/v1/admin/policy', {
      lockout: { hardLock: { consecutiveFailures: 101 } },
    });
    expect(beyondNist.status).toBe(400);
    expect(beyondNist.body.detail).toContain('NIST');
    const get = await admin()<{ settings: { lockout: unknown } }>('GET', '/v1/admin/policy');
    expect(get.body.settings.lockout).toEqual({ userIp: { failures: 3 } });
  });

  it('the default comes back when the override is removed', async () => {
    const put = await admin()('PUT', '/v1/admin/policy', { lockout: { userIp: {} } });
    expect(put.status, JSON.stringify(put.body)).toBe(200);
    // Under the lowered threshold 3 failures lock: a pair left unlocked proves the default is back.
    await eventually(async () => ((await pairLocked(await failPair(3))) ? undefined : true), 30_000);
    const five = await failPair(5);
    await eventually(async () => ((await pairLocked(five)) ? true : undefined), 20_000, 'pair locked');
  });
});
