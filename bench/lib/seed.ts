// Seeding for benchmarks: registered apps, enrolled users (one shared secret, encrypted per
// user under the stack's key ring, as the api stores them).
import { createSecretKeyRing, encryptSecret, type SecretKeyRing } from '@twofold/otp';
import { createEnrollmentsRepository, type Pool } from '@twofold/store';
import { apiClient } from '../../test/support/services.js';

export function keyRingFromEnv(env: Record<string, string>): SecretKeyRing {
  const entries = env['TWOFOLD_MASTER_KEYS']!.split(',').map((entry) => {
    const at = entry.indexOf(':');
    return [entry.slice(0, at), Buffer.from(entry.slice(at + 1), 'base64')] as const;
  });
  return createSecretKeyRing(new Map(entries), env['TWOFOLD_ACTIVE_KEY_ID']!);
}

/** Registers apps through the admin api; returns each app's key. */
export async function registerApps(
  apiUrl: string,
  adminKey: string,
  appIds: readonly string[],
): Promise<Record<string, string>> {
  const keys: Record<string, string> = {};
  for (const appId of appIds) {
    const res = await apiClient(apiUrl, adminKey)<{ key: string }>('POST', '/v1/admin/apps', { appId });
    if (res.status !== 201)
      throw new Error(`registering ${appId}: ${res.status} ${JSON.stringify(res.body)}`);
    keys[appId] = res.body.key;
  }
  return keys;
}

/** Enrolls the users with one shared TOTP secret (SHA-1, 6 digits, 30 s), `concurrency` at a time. */
export async function seedEnrollments(
  pool: Pool,
  keyRing: SecretKeyRing,
  usernames: readonly string[],
  secret: string,
  concurrency = 16,
): Promise<void> {
  const enrollments = createEnrollmentsRepository(pool);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < usernames.length) {
        const username = usernames[next++]!;
        await enrollments.activate({
          username,
          secretCiphertext: encryptSecret(keyRing, username, secret),
          algorithm: 'SHA1',
          digits: 6,
          period: 30,
          origin: 'imported',
          backupCodeHashes: [],
        });
      }
    }),
  );
}
