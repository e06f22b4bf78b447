import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '@twofold/contracts';
import type { RuleMode, SecondFactorPolicy } from '@twofold/policy';
import {
  REFRESH_DEADLINE_MS,
  loadIfMoved,
  refreshEvery,
  type PolicyRepository,
  type StoredPolicy,
} from '@twofold/store';
import type { Logger } from '@twofold/telemetry';

/** The policy as loaded: settings with defaults filled in, and rules by kind. */
export interface PolicyView {
  readonly version: string;
  readonly settings: PolicySettings;
  readonly userRules: ReadonlyMap<string, RuleMode>;
  readonly groupRules: ReadonlyMap<string, RuleMode>;
  readonly appRules: ReadonlyMap<string, RuleMode>;
}

export function toPolicyView(stored: StoredPolicy): PolicyView {
  const byKind = (kind: string) =>
    new Map(stored.rules.filter((r) => r.kind === kind).map((r) => [r.subject, r.mode] as const));
  return {
    version: stored.version,
    settings: mergeSettings(DEFAULT_POLICY_SETTINGS, stored.settings),
    userRules: byKind('user'),
    groupRules: byKind('group'),
    appRules: byKind('app'),
  };
}

export function mergeSettings(base: PolicySettings, patch: Partial<PolicySettings>): PolicySettings {
  return {
    ...base,
    ...patch,
    skipOnSso: { ...base.skipOnSso, ...(patch.skipOnSso ?? {}) },
    lockout: { ...base.lockout, ...(patch.lockout ?? {}) },
  };
}

/** The policy that applies to one user's login. */
export function policyFor(view: PolicyView, username: string): SecondFactorPolicy {
  const { settings } = view;
  return {
    defaultMode: settings.defaultMode,
    userRule: view.userRules.get(username),
    groupRules: view.groupRules,
    appRules: view.appRules,
    skipOnSso: {
      enabled: settings.skipOnSso.enabled,
      trustedIdps: settings.skipOnSso.trustedIdps,
      requireMfaAmr: settings.skipOnSso.requireMfaAmr,
    },
  };
}

/**
 * How long a replica keeps deciding with a copy of the policy it could not confirm current
 * (POLICY_MAX_STALENESS_MS): the bound the api already gives a revoked app key, longer than a
 * Postgres reconnect (a 5 s connect timeout, two or three failed checks) and far shorter than
 * a tightening admins would accept being ignored.
 */
export const DEFAULT_POLICY_MAX_STALENESS_MS = 30_000;

/**
 * Keeps this replica's copy of the policy fresh: a cheap version check every `refreshMs`
 * (a trigger bumps the version on every change), a full reload when it moved. A change
 * made through any replica is therefore seen by all within about a second.
 *
 * `current()` is undefined, and callers fail closed, until the first load succeeds and
 * whenever the copy was last confirmed current (a check or load that succeeded, counted
 * from when it was asked) more than `maxStalenessMs` ago: a replica cut off from Postgres
 * stops applying a policy an admin may have tightened since. The next successful refresh
 * brings the copy back.
 */
export function createPolicySnapshot(deps: {
  repository: Pick<PolicyRepository, 'version' | 'load'>;
  logger: Logger;
  refreshMs?: number;
  /** Oldest confirmation `current()` still answers with; DEFAULT_POLICY_MAX_STALENESS_MS. */
  maxStalenessMs?: number;
  /**
   * Longest one refresh is waited for (ms; default the lesser of 5 s and half the staleness
   * bound): a query on a connection that went silent (a failover, a dropped route) may not
   * settle for many minutes, and no refresh would start meanwhile.
   */
  refreshDeadlineMs?: number;
  /** A monotonic clock in ms (tests); performance.now, which a wall-clock step cannot move. */
  now?: () => number;
}) {
  const now = deps.now ?? (() => performance.now());
  const maxStalenessMs = deps.maxStalenessMs ?? DEFAULT_POLICY_MAX_STALENESS_MS;
  const deadlineMs = deps.refreshDeadlineMs ?? Math.min(REFRESH_DEADLINE_MS, maxStalenessMs / 2);
  let view: PolicyView | undefined;
  // When the copy was last known current: the moment a successful check or load was asked.
  let confirmedAt = -Infinity;
  let failing = false;
  let stale = false;
  let loop: ReturnType<typeof refreshEvery> | undefined;
  // Refreshes started, and the newest whose answer was applied: an answer that comes after
  // its deadline, or after a newer one's, is dropped.
  let started = 0;
  let applied = 0;

  /** The copy while it is fresh enough; notes (once) when it stops being. */
  function freshView(): PolicyView | undefined {
    if (!view) return undefined;
    const ageMs = now() - confirmedAt;
    if (ageMs <= maxStalenessMs) return view;
    if (!stale) {
      stale = true;
      deps.logger.error(
        { version: view.version, ageMs: Math.round(ageMs), maxStalenessMs },
        'policy copy could not be confirmed current in time; deciding fail-closed (challenge/state_unavailable) until a refresh succeeds',
      );
    }
    return undefined;
  }

  async function refresh(): Promise<void> {
    const generation = ++started;
    const asked = now();
    try {
      const stored = await loadIfMoved(deps.repository, view?.version, deadlineMs, 'the policy');
      if (generation < applied) return;
      applied = generation;
      if (stored) view = toPolicyView(stored);
      confirmedAt = Math.max(confirmedAt, asked);
      if (stale && now() - confirmedAt <= maxStalenessMs) {
        stale = false;
        deps.logger.warn({ version: view?.version }, 'policy copy current again; deciding by the policy');
      } else if (failing) {
        deps.logger.info({ version: view?.version }, 'policy refresh works again');
      }
      failing = false;
    } catch (err) {
      // One line per outage, not one per tick: going stale is logged by freshView.
      if (!failing) deps.logger.warn({ err, maxStalenessMs }, 'policy refresh failed; keeping the last copy');
      else deps.logger.debug({ err }, 'policy refresh failed again');
      failing = true;
      freshView();
    }
  }

  return {
    async start(): Promise<void> {
      await refresh();
      // freshView on every tick, also while a refresh hangs: the copy goes stale by the clock.
      loop ??= refreshEvery(refresh, deps.refreshMs ?? 500, freshView);
    },
    stop(): void {
      void loop?.stop();
      loop = undefined;
    },
    /** The policy to decide by; undefined (fail closed) when none was read or it is too old. */
    current: (): PolicyView | undefined => freshView(),
    /** Milliseconds since the copy was last confirmed current; Infinity before the first load. */
    ageMs: (): number => now() - confirmedAt,
    /** Reloads now (after a change made by this replica). */
    reload: refresh,
  };
}
export type PolicySnapshot = ReturnType<typeof createPolicySnapshot>;
