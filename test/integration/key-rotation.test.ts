// Rotating the master key: every secret is re-encrypted under the new active key, and
// codes still verify with the new ring; a secret copied to another user's row is useless.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createSecretKeyRing, keyIdOf } from '@twofold/otp';
import { createEnrollmentsRepository, createPool, type Pool } from '@twofold/store';
import { rotateSecrets } from '@twofold/verification';
import { oathtoolTotp, secretOf, previousStepCode } from '../support/otp.js';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { isolated, type Isolated } from '../support/stack.js';

let world: Isolated;
let pool: Pool;
const oldKey = randomBytes(32);
const newKey = randomBytes(32);

async function withApi<T>(
  env: Record<string, string>,
  fn: (services: RunningServices, appKey: string) => Promise<T>,
) {
  const services = await startServices(world, ['api', 'verifier'], env);
  try {
    const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
    const { body } = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
    return await fn(services, body.key);
  } finally {
    await services.stop();
  }
}

beforeAll(async () => {
  world = await isolated('key-rotation', { database: true });
  pool = createPool({ url: world.config.database.url, schema: world.config.database.schema, max: 2 });
});
afterAll(async () => {
  await pool.end();
  await world.cleanup();
});

describe('key rotation', () => {
  it('re-encrypts every secret under the new key; codes keep verifying', async () => {
    const users = ['rot-a', 'rot-b', 'rot-c'];
    const secrets = new Map<string, string>();
    await withApi(
      { TWOFOLD_MASTER_KEYS: `old:${oldKey.toString('base64')}`, TWOFOLD_ACTIVE_KEY_ID: 'old' },
      async (s, key) => {
        const app = apiClient(s.apiUrl, key);
        for (const username of users) {
          const started = await app<{ enrollmentId: string; otpauthUri: string }>('POST', '/v1/enrollments', {
            username,
          });
          const secret = secretOf(started.body.otpauthUri);
          secrets.set(username, secret);
          const confirmed = await app('POST', `/v1/enrollments/${started.body.enrollmentId}/confirm`, {
            code: await previousStepCode(secret),
          });
          expect(confirmed.status).toBe(200);
        }
      },
    );

    const ring = createSecretKeyRing(
      new Map([
        ['old', oldKey],
        ['new', newKey],
      ]),
      'new',
    );
    const enrollments = createEnrollmentsRepository(pool);
    expect(await rotateSecrets({ enrollments, keyRing: ring })).toEqual({ examined: 3, rotated: 3 });
    expect(await rotateSecrets({ enrollments, keyRing: ring })).toEqual({ examined: 3, rotated: 0 }); // re-runnable
    for (const username of users)
      expect(keyIdOf((await enrollments.get(username))!.secretCiphertext)).toBe('new');

    // A secret row copied to another user does not decrypt for them (username is the AAD).
    await pool.query(
      `UPDATE enrollments SET secret_ciphertext = (SELECT secret_ciphertext FROM enrollments WHERE username = 'rot-a')
        WHERE username = 'rot-b'`,
    );

    // Only the new key from now on: the old one can be retired.
    await withApi(
      { TWOFOLD_MASTER_KEYS: `new:${newKey.toString('base64')}`, TWOFOLD_ACTIVE_KEY_ID: 'new' },
      async (s, key) => {
        const app = apiClient(s.apiUrl, key);
        const verifyFor = async (username: string) => {
          const decided = await app<{ challengeId: string }>(
            'POST',
            '/v1/login-events?wait=decision&timeoutMs=15000',
            {
              type: 'twofold.login.succeeded',
              subject: username,
              data: {
                appId: 'jira',
                session: hashSessionToken(randomUUID()),
                method: 'password',
                ip: '192.0.2.44',
              },
            },
          );
          return app<{ verified: boolean }>('POST', `/v1/challenges/${decided.body.challengeId}/verify`, {
            code: oathtoolTotp(secrets.get(username)!),
          });
        };
        expect((await verifyFor('rot-a')).body).toMatchObject({ verified: true });
        expect((await verifyFor('rot-c')).body).toMatchObject({ verified: true });
        const copied = await verifyFor('rot-b');
        expect(copied.status).toBe(409);
        expect((copied.body as unknown as { detail: string }).detail).toMatch(
          /cannot be decrypted \(tampered\)/,
        );
      },
    );
  });
});
