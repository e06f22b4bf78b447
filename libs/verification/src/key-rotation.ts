import {
  keyIdOf,
  reencryptSecret,
  SecretDecryptionError,
  type SecretDecryptionFailure,
  type SecretKeyRing,
} from '@twofold/otp';
import type { EnrollmentsRepository } from '@twofold/store';

/** A stored secret the rotation could not decrypt: an admin reset of the user is the way out. */
export interface UndecryptableSecret {
  readonly username: string;
  /** A started, unconfirmed enrollment (it expires on its own) rather than the active one. */
  readonly pending: boolean;
  readonly failure: SecretDecryptionFailure;
}

export interface RotationReport {
  /** Rows read, active and pending enrollments. */
  examined: number;
  /** Re-encrypted and written. */
  rotated: number;
  /** Under the active key already. */
  alreadyActive: number;
  /** Changed by a reset or re-enrollment between read and write, so left alone. */
  changedMeanwhile: number;
  undecryptable: UndecryptableSecret[];
  /**
   * Rows under another key than the active one, by key id, counted after the scan: what
   * still needs that key. Zero everywhere means the old keys can be removed.
   */
  leftUnderOtherKeys: Record<string, number>;
}

/** Where a malformed ciphertext is counted: it names no key. */
export const MALFORMED_KEY_ID = '(malformed)';

interface StoredSecret {
  readonly username: string;
  readonly pending: boolean;
  readonly ciphertext: string;
  /** Writes `next` only if the row still holds `ciphertext` (compare and swap). */
  replace(next: string): Promise<boolean>;
}

// Both tables: a pending enrollment left under the old key could not be shown or confirmed
// once that key is removed.
async function* storedSecrets(enrollments: EnrollmentsRepository): AsyncGenerator<StoredSecret> {
  for await (const page of enrollments.allSecrets()) {
    for (const row of page) {
      yield {
        username: row.username,
        pending: false,
        ciphertext: row.secretCiphertext,
        replace: (next) => enrollments.replaceSecret(row.username, row.secretCiphertext, next),
      };
    }
  }
  for await (const page of enrollments.allPendingSecrets()) {
    for (const row of page) {
      yield {
        username: row.username,
        pending: true,
        ciphertext: row.secretCiphertext,
        replace: (next) => enrollments.replacePendingSecret(row.enrollmentId, row.secretCiphertext, next),
      };
    }
  }
}

/**
 * Counts the rows of both tables not under the active key, by the key id each ciphertext
 * names. Read afresh rather than trusted from the scan: a row the scan lost to a concurrent
 * write may be under any key.
 */
export async function countUnderOtherKeys(deps: {
  enrollments: EnrollmentsRepository;
  keyRing: SecretKeyRing;
}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for await (const row of storedSecrets(deps.enrollments)) {
    const keyId = keyIdOrMalformed(row.ciphertext);
    if (keyId !== deps.keyRing.activeKeyId) counts[keyId] = (counts[keyId] ?? 0) + 1;
  }
  return counts;
}

/**
 * Re-encrypts every stored TOTP secret (active and pending enrollments) under the active
 * key of the ring, then counts what is still under other keys. Safe to run while services
 * run (each row is replaced only if unchanged since read) and to re-run. A row that does not
 * decrypt is reported and skipped, so one bad row cannot stop the rest.
 */
export async function rotateSecrets(deps: {
  enrollments: EnrollmentsRepository;
  keyRing: SecretKeyRing;
}): Promise<RotationReport> {
  const report: RotationReport = {
    examined: 0,
    rotated: 0,
    alreadyActive: 0,
    changedMeanwhile: 0,
    undecryptable: [],
    leftUnderOtherKeys: {},
  };
  for await (const row of storedSecrets(deps.enrollments)) {
    report.examined++;
    let next: { ciphertext: string; changed: boolean };
    try {
      next = reencryptSecret(deps.keyRing, row.username, row.ciphertext);
    } catch (err) {
      if (!(err instanceof SecretDecryptionError)) throw err;
      report.undecryptable.push({ username: row.username, pending: row.pending, failure: err.failure });
      continue;
    }
    if (!next.changed) report.alreadyActive++;
    else if (await row.replace(next.ciphertext)) report.rotated++;
    else report.changedMeanwhile++;
  }
  report.leftUnderOtherKeys = await countUnderOtherKeys(deps);
  return report;
}

function keyIdOrMalformed(ciphertext: string): string {
  try {
    return keyIdOf(ciphertext);
  } catch (err) {
    if (err instanceof SecretDecryptionError) return MALFORMED_KEY_ID;
    throw err;
  }
}
