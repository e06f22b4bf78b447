// Rotating the master key: every secret is re-encrypted under the new active key, and
// codes still verify with the new ring; a secret copied to another user's row is useless.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { createSecretKeyRing, decryptSecret, encryptSecret, keyIdOf } from '@twofold/otp';
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
    expect(await rotateSecrets({ enrollments, keyRing: ring })).toEqual({
      examined: 3,
      rotated: 3,
      alreadyActive: 0,
      changedMeanwhile: 0,
      undecryptable: [],
      leftUnderOtherKeys: {},
    });
    expect(await rotateSecrets({ enrollments, keyRing: ring })).toMatchObject({
      examined: 3,
      rotated: 0,
      alreadyActive: 3,
    }); // re-runnable
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

// The scan itself, on rows written straight to the tables: pending enrollments, rows lost to a
// concurrent write, rows that do not decrypt.
describe('key rotation scan', () => {
  const oldRing = createSecretKeyRing(new Map([['old', oldKey]]), 'old');
  const bothRing = createSecretKeyRing(
    new Map([
      ['old', oldKey],
      ['new', newKey],
    ]),
    'new',
  );
  const newOnlyRing = createSecretKeyRing(new Map([['new', newKey]]), 'new');
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

  const emptyTables = () =>
    pool.query('DELETE FROM backup_codes; DELETE FROM enrollments; DELETE FROM pending_enrollments');
  const enroll = (username: string, ciphertext: string) =>
    createEnrollmentsRepository(pool).activate({
      username,
      secretCiphertext: ciphertext,
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      origin: 'imported',
      backupCodeHashes: [],
    });
  const startPending = async (username: string, ciphertext: string) => {
    const enrollmentId = randomUUID();
    await createEnrollmentsRepository(pool).createPending({
      enrollmentId,
      username,
      secretCiphertext: ciphertext,
      algorithm: 'SHA1',
      digits: 6,
      period: 30,
      appId: null,
      ttlSeconds: 900,
    });
    return enrollmentId;
  };

  it('re-encrypts pending enrollments too, so they still open once the old key is removed', async () => {
    await emptyTables();
    await enroll('scan-active', encryptSecret(oldRing, 'scan-active', secret));
    const pendingId = await startPending('scan-pending', encryptSecret(oldRing, 'scan-pending', secret));
    const enrollments = createEnrollmentsRepository(pool);

    const report = await rotateSecrets({ enrollments, keyRing: bothRing });
    expect(report).toMatchObject({ examined: 2, rotated: 2, leftUnderOtherKeys: {} });
    const pending = await enrollments.getPending(pendingId);
    expect(keyIdOf(pending!.secretCiphertext)).toBe('new');
    expect(decryptSecret(newOnlyRing, 'scan-pending', pending!.secretCiphertext)).toBe(secret);
  });

  it('counts what a concurrent write left under another key; a second run finishes', async () => {
    await emptyTables();
    for (const username of ['race-a', 'race-b'])
      await enroll(username, encryptSecret(oldRing, username, secret));
    await startPending('race-p', encryptSecret(oldRing, 'race-p', secret));
    const enrollments = createEnrollmentsRepository(pool);
    // A pod still on the old active key re-enrolls race-a between the scan's read and write.
    const racing = {
      ...enrollments,
      async replaceSecret(username: string, previous: string, next: string) {
        if (username === 'race-a') {
          await pool.query('UPDATE enrollments SET secret_ciphertext = $2 WHERE username = $1', [
            username,
            encryptSecret(oldRing, username, secret),
          ]);
        }
        return enrollments.replaceSecret(username, previous, next);
      },
    };

    const first = await rotateSecrets({ enrollments: racing, keyRing: bothRing });
    expect(first).toMatchObject({
      examined: 3,
      rotated: 2,
      alreadyActive: 0,
      changedMeanwhile: 1,
      leftUnderOtherKeys: { old: 1 },
    });
    const second = await rotateSecrets({ enrollments, keyRing: bothRing });
    expect(second).toMatchObject({ rotated: 1, alreadyActive: 2, leftUnderOtherKeys: {} });
  });

  it('skips and names the rows that do not decrypt, and rotates the rest', async () => {
    await emptyTables();
    const goneRing = createSecretKeyRing(new Map([['gone', randomBytes(32)]]), 'gone');
    await enroll('bad-a', encryptSecret(oldRing, 'bad-a', secret));
    await enroll('bad-b', encryptSecret(oldRing, 'bad-a', secret)); // copied from bad-a's row
    await enroll('bad-c', encryptSecret(goneRing, 'bad-c', secret)); // a key already removed
    await enroll('bad-d', 'not a ciphertext');
    await enroll('bad-e', encryptSecret(oldRing, 'bad-e', secret));
    await startPending('bad-p', encryptSecret(oldRing, 'someone-else', secret));
    const enrollments = createEnrollmentsRepository(pool);

    const report = await rotateSecrets({ enrollments, keyRing: bothRing });
    expect(report).toMatchObject({ examined: 6, rotated: 2 });
    expect(report.undecryptable).toEqual([
      { username: 'bad-b', pending: false, failure: 'tampered' },
      { username: 'bad-c', pending: false, failure: 'unknown_key' },
      { username: 'bad-d', pending: false, failure: 'malformed' },
      { username: 'bad-p', pending: true, failure: 'tampered' },
    ]);
    expect(report.leftUnderOtherKeys).toEqual({ old: 2, gone: 1, '(malformed)': 1 });
    for (const username of ['bad-a', 'bad-e'])
      expect(keyIdOf((await enrollments.get(username))!.secretCiphertext)).toBe('new');
  });
});
