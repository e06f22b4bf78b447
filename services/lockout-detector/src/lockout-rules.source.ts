import { LockoutRulesError, resolveLockoutRules, type LockoutRules } from '@twofold/lockout';
import { REFRESH_DEADLINE_MS, loadIfMoved, refreshEvery } from '@twofold/store';
import type { Logger } from '@twofold/telemetry';

/** What the rules source reads of the admin policy (PolicyRepository of @twofold/store fits). */
export interface LockoutPolicyReader {
  version(): Promise<string>;
  load(): Promise<{ version: string; settings: { lockout?: unknown } }>;
}

/**
 * The lockout rules in force: the env rules (`LOCKOUT_RULES` over the defaults) with the
 * admin policy's `lockout` entry on top, so an admin adjusts any threshold and every
 * replica applies it within about a second. Like the verifier's policy snapshot, a cheap
 * version check runs every `refreshMs` (the policy version moves on every change) and the
 * policy is read again only when it moved.
 *
 * Counting never waits on Postgres: until the policy is read, and while it cannot be,
 * the last rules in force apply (the env rules at first). A `lockout` entry the rules
 * refuse (unknown key, a number out of range) is logged and the last good rules stay;
 * the api refuses such a change already, this guards against rows written otherwise.
 */
export function createLockoutRulesSource(deps: {
  base: LockoutRules;
  policy?: LockoutPolicyReader;
  logger: Logger;
  refreshMs?: number;
  /** Longest one refresh is waited for (ms; REFRESH_DEADLINE_MS). */
  refreshDeadlineMs?: number;
}) {
  const log = deps.logger.child({ component: 'lockout-rules' });
  const deadlineMs = deps.refreshDeadlineMs ?? REFRESH_DEADLINE_MS;
  let rules = deps.base;
  let version: string | undefined;
  let loop: ReturnType<typeof refreshEvery> | undefined;

  async function refresh(): Promise<void> {
    const policy = deps.policy;
    if (!policy) return;
    try {
      const stored = await loadIfMoved(policy, version, deadlineMs, 'the lockout policy');
      if (!stored) return;
      try {
        const next = resolveLockoutRules(stored.settings.lockout ?? {}, deps.base);
        if (JSON.stringify(next) !== JSON.stringify(rules)) {
          log.info(
            { policyVersion: stored.version, lockout: stored.settings.lockout ?? {} },
            'lockout rules changed',
          );
        }
        rules = next;
      } catch (err) {
        if (!(err instanceof LockoutRulesError)) throw err;
        log.error(
          { policyVersion: stored.version, problems: err.problems },
          'the admin policy has lockout rules that do not make sense; keeping the rules in force',
        );
      }
      version = stored.version;
    } catch (err) {
      log.warn({ err }, 'lockout policy refresh failed; keeping the rules in force');
    }
  }

  return {
    /** The rules to apply now (a new frozen object after each change). */
    current: (): LockoutRules => rules,
    /** Reads the policy once, then keeps checking its version. */
    async start(): Promise<void> {
      await refresh();
      if (!deps.policy || loop) return;
      loop = refreshEvery(refresh, deps.refreshMs ?? 500);
    },
    async stop(): Promise<void> {
      const stopping = loop?.stop();
      loop = undefined;
      await stopping;
    },
    /** Checks the policy now. */
    refresh,
  };
}
export type LockoutRulesSource = ReturnType<typeof createLockoutRulesSource>;
