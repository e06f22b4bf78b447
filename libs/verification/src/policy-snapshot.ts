import { DEFAULT_POLICY_SETTINGS, type PolicySettings } from '@twofold/contracts';
import type { RuleMode, SecondFactorPolicy } from '@twofold/policy';
import type { PolicyRepository, StoredPolicy } from '@twofold/store';
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
 * Keeps this replica's copy of the policy fresh: a cheap version check every `refreshMs`
 * (a trigger bumps the version on every change), a full reload when it moved. A change
 * made through any replica is therefore seen by all within about a second. Until the
 * first load succeeds, `current()` is undefined and callers fail closed.
 */
export function createPolicySnapshot(deps: {
  repository: PolicyRepository;
  logger: Logger;
  refreshMs?: number;
}) {
  let view: PolicyView | undefined;
  let timer: NodeJS.Timeout | undefined;
  let refreshing: Promise<void> | undefined;

  async function refresh(): Promise<void> {
    try {
      if (view && (await deps.repository.version()) === view.version) return;
      view = toPolicyView(await deps.repository.load());
    } catch (err) {
      deps.logger.warn({ err }, 'policy refresh failed; keeping the last copy');
    }
  }

  return {
    async start(): Promise<void> {
      await refresh();
      timer = setInterval(() => {
        refreshing ??= refresh().finally(() => (refreshing = undefined));
      }, deps.refreshMs ?? 500);
      timer.unref();
    },
    stop(): void {
      if (timer) clearInterval(timer);
    },
    current: (): PolicyView | undefined => view,
    /** Reloads now (after a change made by this replica). */
    reload: refresh,
  };
}
export type PolicySnapshot = ReturnType<typeof createPolicySnapshot>;
