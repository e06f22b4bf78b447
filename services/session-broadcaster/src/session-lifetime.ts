import { REFRESH_DEADLINE_MS, loadIfMoved, refreshEvery, type PolicyRepository } from '@twofold/store';
import type { Logger } from '@twofold/telemetry';

/** The session lifetime in force: read by the broadcaster for every batch it applies. */
export interface SessionLifetime {
  start(): Promise<void>;
  stop(): void;
  /** Seconds a verified session stays verified now. */
  seconds(): number;
  /** Reads the policy again now (tests; after a change this process made). */
  reload(): Promise<void>;
}

/**
 * The session lifetime from the admin policy (`sessionTtlSeconds` of PUT /v1/admin/policy),
 * kept fresh the way the verifier keeps its policy copy (libs/verification
 * createPolicySnapshot): a cheap version check every `refreshMs`, a reload when the version
 * moved, so a change reaches every replica within about a second. `fallbackSeconds` (the
 * TWOFOLD_SESSION_TTL_SECONDS env) holds while the stored policy names no lifetime, before
 * the first read, and while Postgres cannot answer (the last value read is kept).
 */
export function createSessionLifetime(deps: {
  policies: Pick<PolicyRepository, 'version' | 'load'>;
  fallbackSeconds: number;
  logger: Logger;
  refreshMs?: number;
  /** Longest one refresh is waited for (ms; REFRESH_DEADLINE_MS). */
  refreshDeadlineMs?: number;
}): SessionLifetime {
  const log = deps.logger.child({ component: 'session-lifetime' });
  const deadlineMs = deps.refreshDeadlineMs ?? REFRESH_DEADLINE_MS;
  let version: string | undefined;
  let fromPolicy: number | undefined;
  let loop: ReturnType<typeof refreshEvery> | undefined;

  async function refresh(): Promise<void> {
    try {
      const stored = await loadIfMoved(deps.policies, version, deadlineMs, 'the session lifetime');
      if (!stored) return;
      const ttl = stored.settings.sessionTtlSeconds;
      const valid = typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= 60;
      if (ttl !== undefined && !valid)
        log.warn({ ttl }, 'policy session lifetime is not usable; ignoring it');
      if (valid && ttl !== fromPolicy) log.info({ ttlSeconds: ttl }, 'session lifetime from the policy');
      fromPolicy = valid ? ttl : undefined;
      version = stored.version;
    } catch (err) {
      log.warn({ err }, 'policy refresh failed; keeping the last session lifetime');
    }
  }
  return {
    async start() {
      await refresh();
      loop ??= refreshEvery(refresh, deps.refreshMs ?? 500);
    },
    stop() {
      void loop?.stop();
      loop = undefined;
    },
    seconds: () => fromPolicy ?? deps.fallbackSeconds,
    // Joins the refresh running, if any: two at once could apply an older read last.
    reload: () => loop?.now() ?? refresh(),
  };
}
