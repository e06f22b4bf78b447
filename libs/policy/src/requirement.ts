/** What an admin rule says about a user, a group or an app. */
export type RuleMode = 'require' | 'exempt';

/** The global default: everyone must use a second factor, or only those who enrolled. */
export type DefaultMode = 'require' | 'optional';

/** The requirement that applies to one login, before state (enrollment, session) is known. */
export type Requirement = RuleMode | 'optional';

/** The rules an admin set, as they apply to one user. */
export interface RequirementRules {
  readonly defaultMode: DefaultMode;
  /** The rule for this user, if any. */
  readonly userRule?: RuleMode | undefined;
  /** Rules by group name; names compare exactly, as the IdP or Crowd sends them. */
  readonly groupRules: ReadonlyMap<string, RuleMode>;
  /** Rules by appId. */
  readonly appRules: ReadonlyMap<string, RuleMode>;
}

/** Which level of the precedence decided. */
export type RequirementSource = 'user' | 'group' | 'app' | 'default';

export interface ResolvedRequirement {
  readonly requirement: Requirement;
  readonly source: RequirementSource;
}

/**
 * Applies the precedence of CONTRACT.md: the user's rule, then the rules of the user's
 * groups (one `require` beats any number of `exempt`), then the app's rule, then the
 * global default.
 */
export function resolveRequirement(
  rules: RequirementRules,
  login: { readonly appId: string; readonly groups?: readonly string[] | undefined },
): ResolvedRequirement {
  if (rules.userRule !== undefined) return { requirement: rules.userRule, source: 'user' };
  let groupRequirement: RuleMode | undefined;
  for (const group of login.groups ?? []) {
    const mode = rules.groupRules.get(group);
    if (mode === 'require') return { requirement: 'require', source: 'group' };
    if (mode === 'exempt') groupRequirement = 'exempt';
  }
  if (groupRequirement !== undefined) return { requirement: groupRequirement, source: 'group' };
  const appRule = rules.appRules.get(login.appId);
  if (appRule !== undefined) return { requirement: appRule, source: 'app' };
  return { requirement: rules.defaultMode, source: 'default' };
}
