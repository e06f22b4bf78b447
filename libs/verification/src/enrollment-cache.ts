/**
 * Enrollments kept in memory: by the code verifier (the key, so a user's next code costs no
 * Postgres read and no decryption) and by the login verifier (the sealed row, so a user's
 * next login costs no Postgres read). Each is kept under the user's enrollment version
 * token, read from Redis before the row; a copy is used only under the token read now, and
 * the replay guard's script checks the token again when a code is accepted, so a copy is
 * never used once the user's authenticator was reset or replaced: a reset changes the token
 * (see the enrollment service), in every replica at once. Bounded in size (oldest out first)
 * and in age (a copy is read again after `maxAgeMs` whatever the token says; the age may
 * depend on the entry).
 */
export function createEnrollmentCache<
  T extends { readonly version: string; readonly readAt: number },
>(options: { maxEntries: number; maxAgeMs: number | ((entry: T) => number) }) {
  const kept = new Map<string, T>();
  const { maxAgeMs } = options;
  const ageLimit = typeof maxAgeMs === 'number' ? () => maxAgeMs : maxAgeMs;
  return {
    get(username: string, now: number): T | undefined {
      const entry = kept.get(username);
      if (!entry) return undefined;
      if (now - entry.readAt > ageLimit(entry)) {
        kept.delete(username);
        return undefined;
      }
      return entry;
    },
    set(username: string, entry: T): void {
      if (options.maxEntries <= 0) return;
      kept.delete(username);
      if (kept.size >= options.maxEntries) kept.delete(kept.keys().next().value!);
      kept.set(username, entry);
    },
    delete(username: string): void {
      kept.delete(username);
    },
    get size() {
      return kept.size;
    },
  };
}
