import { reencryptSecret, type SecretKeyRing } from '@twofold/otp';
import type { EnrollmentsRepository } from '@twofold/store';

/**
 * Re-encrypts every stored TOTP secret under the active key of the ring. Safe to run
 * while services run (each row is replaced only if unchanged since read) and to re-run.
 */
export async function rotateSecrets(deps: { enrollments: EnrollmentsRepository; keyRing: SecretKeyRing }) {
  let examined = 0;
  let rotated = 0;
  for await (const page of deps.enrollments.allSecrets()) {
    for (const row of page) {
      examined++;
      const { ciphertext, changed } = reencryptSecret(deps.keyRing, row.username, row.secretCiphertext);
      if (changed && (await deps.enrollments.replaceSecret(row.username, row.secretCiphertext, ciphertext)))
        rotated++;
    }
  }
  return { examined, rotated };
}
