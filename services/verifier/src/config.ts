import {
  deepFreeze,
  integer,
  readEnv,
  commonEnvSpec,
  toCommonConfig,
  type CommonConfig,
} from '@twofold/config';

export const verifierEnvSpec = {
  ...commonEnvSpec,
  // At least 5 s: ten refresh periods, so one slow check (a GC pause, a busy pool) does not
  // flap decisions and readiness; at most 5 min, beyond which a replica cut off from Postgres
  // would ignore a tightened policy for longer than any admin would expect.
  POLICY_MAX_STALENESS_MS: integer({ min: 5_000, max: 300_000 })({
    default: 30_000,
    desc: 'how long a replica that cannot reach Postgres keeps deciding by its last policy copy; past it every login is challenged (state_unavailable)',
  }),
} as const;

export interface VerifierConfig extends CommonConfig {
  /** Oldest confirmation of the policy copy decisions still use (POLICY_MAX_STALENESS_MS). */
  readonly policy: { readonly maxStalenessMs: number };
}

export function loadVerifierConfig(env: Record<string, string | undefined> = process.env): VerifierConfig {
  const raw = readEnv(verifierEnvSpec, env);
  return deepFreeze({
    ...toCommonConfig(raw, 'verifier'),
    policy: { maxStalenessMs: raw.POLICY_MAX_STALENESS_MS },
  });
}
