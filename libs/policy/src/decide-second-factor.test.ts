import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  SECOND_FACTOR_AMR,
  UNKNOWN,
  combineLocks,
  decideSecondFactor,
  isSsoSkipAllowed,
  type Lock,
  type LoginFacts,
  type SecondFactorDecision,
  type SecondFactorInput,
  type SecondFactorPolicy,
  type SecondFactorState,
  type Unknown,
} from './decide-second-factor.js';

const UNTIL = '2026-11-28T09:15:00.000Z';

// A password login to jira by an enrolled user whom the default requires: a challenge.
const base: SecondFactorInput = {
  login: { method: 'password', appId: 'jira', groups: [] },
  policy: {
    defaultMode: 'require',
    skipOnSso: { enabled: true },
    groupRules: new Map(),
    appRules: new Map(),
  },
  state: { sessionVerified: false, enrolled: true, lock: null, forceSecondFactor: false },
};

interface Case {
  login?: Partial<LoginFacts>;
  policy?: Partial<SecondFactorPolicy>;
  state?: Partial<SecondFactorState>;
  expected: SecondFactorDecision;
}

function input(c: Omit<Case, 'expected'>): SecondFactorInput {
  return {
    login: { ...base.login, ...c.login },
    policy: { ...base.policy, ...c.policy },
    state: { ...base.state, ...c.state },
  };
}

const challenge = { decision: 'challenge', reason: 'policy_required' } as const;
const unavailable = { decision: 'challenge', reason: 'state_unavailable' } as const;
const enroll = { decision: 'enroll', reason: 'not_enrolled' } as const;
const skipSession = { decision: 'skip', reason: 'session_verified' } as const;
const skipSso = { decision: 'skip', reason: 'sso' } as const;
const skipExempt = { decision: 'skip', reason: 'exempt' } as const;
const denied = (lockedUntil: string | null) => ({ decision: 'deny', reason: 'locked', lockedUntil }) as const;

const sso: Partial<LoginFacts> = { method: 'sso', idp: 'okta', amr: ['pwd', 'mfa'] };
const exemptUser: Partial<SecondFactorPolicy> = { userRule: 'exempt' };
const optional: Partial<SecondFactorPolicy> = { defaultMode: 'optional' };

const table: Record<string, Case> = {
  // every decision and reason
  'challenge/policy_required: required and enrolled': { expected: challenge },
  'deny/locked until a time': { state: { lock: { until: UNTIL } }, expected: denied(UNTIL) },
  'deny/locked permanently': { state: { lock: { until: null } }, expected: denied(null) },
  'skip/session_verified: verified in another app': {
    login: { appId: 'confluence' },
    state: { sessionVerified: true },
    expected: skipSession,
  },
  'skip/sso: an IdP login with skipOnSso': { login: sso, expected: skipSso },
  'skip/exempt: an exempt user': { policy: exemptUser, expected: skipExempt },
  'enroll/not_enrolled: required, never enrolled': { state: { enrolled: false }, expected: enroll },
  'challenge/state_unavailable: Redis unreachable': {
    state: { sessionVerified: UNKNOWN, enrolled: UNKNOWN, lock: UNKNOWN, forceSecondFactor: UNKNOWN },
    expected: unavailable,
  },

  // order of the steps
  'a lock beats a verified session': {
    state: { lock: { until: UNTIL }, sessionVerified: true },
    expected: denied(UNTIL),
  },
  'a lock beats an SSO skip': { login: sso, state: { lock: { until: null } }, expected: denied(null) },
  'a lock beats an exemption': {
    policy: exemptUser,
    state: { lock: { until: UNTIL } },
    expected: denied(UNTIL),
  },
  'a lock beats enrollment': { state: { lock: { until: UNTIL }, enrolled: false }, expected: denied(UNTIL) },
  'a verified session skips even when the user must use 2FA': {
    policy: { userRule: 'require' },
    state: { sessionVerified: true },
    expected: skipSession,
  },
  'a verified session and an SSO login: the session reason': {
    login: sso,
    state: { sessionVerified: true },
    expected: skipSession,
  },
  'skipOnSso applies before the requirement (user require)': {
    login: sso,
    policy: { userRule: 'require' },
    expected: skipSso,
  },
  'skipOnSso applies to a user not enrolled': { login: sso, state: { enrolled: false }, expected: skipSso },
  'an SSO skip reports sso, not exempt': { login: sso, policy: exemptUser, expected: skipSso },
  'an exempt user need not be enrolled': {
    policy: exemptUser,
    state: { enrolled: false },
    expected: skipExempt,
  },

  // precedence of the requirement
  'user require beats a group exempt': {
    login: { groups: ['contractors'] },
    policy: {
      defaultMode: 'optional',
      userRule: 'require',
      groupRules: new Map([['contractors', 'exempt']]),
    },
    expected: challenge,
  },
  'user exempt beats a group require': {
    login: { groups: ['admins'] },
    policy: { userRule: 'exempt', groupRules: new Map([['admins', 'require']]) },
    expected: skipExempt,
  },
  'group require beats group exempt': {
    login: { groups: ['contractors', 'admins'] },
    policy: {
      defaultMode: 'optional',
      groupRules: new Map([
        ['contractors', 'exempt'],
        ['admins', 'require'],
      ]),
    },
    state: { enrolled: false },
    expected: enroll,
  },
  'group exempt beats an app require': {
    login: { groups: ['contractors'] },
    policy: { groupRules: new Map([['contractors', 'exempt']]), appRules: new Map([['jira', 'require']]) },
    expected: skipExempt,
  },
  'group require beats an app exempt': {
    login: { groups: ['admins'] },
    policy: { groupRules: new Map([['admins', 'require']]), appRules: new Map([['jira', 'exempt']]) },
    expected: challenge,
  },
  'app exempt beats the default require': {
    policy: { appRules: new Map([['jira', 'exempt']]) },
    expected: skipExempt,
  },
  'an app rule binds only its app': {
    login: { appId: 'confluence' },
    policy: { appRules: new Map([['jira', 'exempt']]) },
    expected: challenge,
  },
  'app require beats the default optional': {
    policy: { defaultMode: 'optional', appRules: new Map([['jira', 'require']]) },
    state: { enrolled: false },
    expected: enroll,
  },
  'optional: a user who enrolled voluntarily is challenged': { policy: optional, expected: challenge },
  'optional: a user who never enrolled skips as exempt': {
    policy: optional,
    state: { enrolled: false },
    expected: skipExempt,
  },

  // skipOnSso and its narrowing
  'skipOnSso disabled: an SSO login is challenged': {
    login: sso,
    policy: { skipOnSso: { enabled: false } },
    expected: challenge,
  },
  'skipOnSso never applies to a password login': {
    login: { ...sso, method: 'password' },
    expected: challenge,
  },
  'skipOnSso never applies to a remember-me login': {
    login: { ...sso, method: 'remember_me' },
    expected: challenge,
  },
  'skipOnSso never applies to an API token login': {
    login: { ...sso, method: 'api_token' },
    expected: challenge,
  },
  'trusted IdP: skip': {
    login: sso,
    policy: { skipOnSso: { enabled: true, trustedIdps: ['azure', 'okta'] } },
    expected: skipSso,
  },
  'untrusted IdP: challenge': {
    login: { ...sso, idp: 'evil-idp' },
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'] } },
    expected: challenge,
  },
  'no idp named while a trust list is set: challenge': {
    login: { method: 'sso', amr: ['mfa'] },
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'] } },
    expected: challenge,
  },
  'an empty trust list trusts no IdP': {
    login: sso,
    policy: { skipOnSso: { enabled: true, trustedIdps: [] } },
    expected: challenge,
  },
  'IdP names compare exactly': {
    login: { ...sso, idp: 'OKTA' },
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'] } },
    expected: challenge,
  },
  'amr with mfa when required: skip': {
    login: sso,
    policy: { skipOnSso: { enabled: true, requireMfaAmr: true } },
    expected: skipSso,
  },
  'amr with only a password when required: challenge': {
    login: { ...sso, amr: ['pwd'] },
    policy: { skipOnSso: { enabled: true, requireMfaAmr: true } },
    expected: challenge,
  },
  'no amr when required: challenge': {
    login: { method: 'sso', idp: 'okta' },
    policy: { skipOnSso: { enabled: true, requireMfaAmr: true } },
    expected: challenge,
  },
  'trusted IdP without a second factor, both narrowings set: challenge': {
    login: { ...sso, amr: ['pwd'] },
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'], requireMfaAmr: true } },
    expected: challenge,
  },
  'untrusted IdP with a second factor, both narrowings set: challenge': {
    login: { ...sso, idp: 'evil-idp' },
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'], requireMfaAmr: true } },
    expected: challenge,
  },
  'trusted IdP with a second factor, both narrowings set: skip': {
    login: sso,
    policy: { skipOnSso: { enabled: true, trustedIdps: ['okta'], requireMfaAmr: true } },
    expected: skipSso,
  },

  // forceSecondFactor: no skips
  'forced: a verified session is challenged again': {
    state: { forceSecondFactor: true, sessionVerified: true },
    expected: challenge,
  },
  'forced: an SSO login is challenged': {
    login: sso,
    state: { forceSecondFactor: true },
    expected: challenge,
  },
  'forced: an exempt user is challenged': {
    policy: exemptUser,
    state: { forceSecondFactor: true },
    expected: challenge,
  },
  'forced: an optional user who never enrolled must enroll': {
    policy: optional,
    state: { forceSecondFactor: true, enrolled: false },
    expected: enroll,
  },
  'forced: a lock still denies': {
    state: { forceSecondFactor: true, lock: { until: UNTIL } },
    expected: denied(UNTIL),
  },

  // fail closed
  'lock unknown, session verified: no skip': {
    state: { lock: UNKNOWN, sessionVerified: true },
    expected: unavailable,
  },
  'lock unknown, exempt user: no skip': {
    policy: exemptUser,
    state: { lock: UNKNOWN },
    expected: unavailable,
  },
  'lock unknown, SSO login: no skip': { login: sso, state: { lock: UNKNOWN }, expected: unavailable },
  'lock unknown, required: no plain challenge either': { state: { lock: UNKNOWN }, expected: unavailable },
  'force unknown, session verified: no skip': {
    state: { forceSecondFactor: UNKNOWN, sessionVerified: true },
    expected: unavailable,
  },
  'force unknown, SSO login: no skip': {
    login: sso,
    state: { forceSecondFactor: UNKNOWN },
    expected: unavailable,
  },
  'force unknown, exempt user: no skip': {
    policy: exemptUser,
    state: { forceSecondFactor: UNKNOWN },
    expected: unavailable,
  },
  'force unknown, optional and never enrolled: no skip': {
    policy: optional,
    state: { forceSecondFactor: UNKNOWN, enrolled: false },
    expected: unavailable,
  },
  'force unknown does not matter when a challenge is due anyway': {
    state: { forceSecondFactor: UNKNOWN },
    expected: challenge,
  },
  'force unknown does not matter when enrollment is due anyway': {
    state: { forceSecondFactor: UNKNOWN, enrolled: false },
    expected: enroll,
  },
  'session unknown, required and enrolled: it might have skipped': {
    state: { sessionVerified: UNKNOWN },
    expected: unavailable,
  },
  'session unknown, required and not enrolled': {
    state: { sessionVerified: UNKNOWN, enrolled: false },
    expected: unavailable,
  },
  'session unknown does not matter for an SSO skip': {
    login: sso,
    state: { sessionVerified: UNKNOWN },
    expected: skipSso,
  },
  'session unknown does not matter for an exempt user': {
    policy: exemptUser,
    state: { sessionVerified: UNKNOWN },
    expected: skipExempt,
  },
  'enrollment unknown, required': { state: { enrolled: UNKNOWN }, expected: unavailable },
  'enrollment unknown, optional: no skip': {
    policy: optional,
    state: { enrolled: UNKNOWN },
    expected: unavailable,
  },
  'enrollment unknown, forced': {
    state: { enrolled: UNKNOWN, forceSecondFactor: true },
    expected: unavailable,
  },
  'enrollment unknown does not matter for a verified session': {
    state: { enrolled: UNKNOWN, sessionVerified: true },
    expected: skipSession,
  },
  'enrollment unknown does not matter for an exempt user': {
    policy: exemptUser,
    state: { enrolled: UNKNOWN },
    expected: skipExempt,
  },
  'a known lock denies whatever else is unknown': {
    state: {
      lock: { until: UNTIL },
      sessionVerified: UNKNOWN,
      enrolled: UNKNOWN,
      forceSecondFactor: UNKNOWN,
    },
    expected: denied(UNTIL),
  },
};

describe('decideSecondFactor', () => {
  it.each(Object.entries(table))('%s', (_name, c) => {
    expect(decideSecondFactor(input(c))).toEqual(c.expected);
  });

  it('covers every decision and every reason of the contract', () => {
    const outcomes = Object.values(table).map((c) => c.expected);
    expect(new Set(outcomes.map((o) => o.decision))).toEqual(
      new Set(['challenge', 'skip', 'enroll', 'deny']),
    );
    expect(new Set(outcomes.map((o) => o.reason))).toEqual(
      new Set([
        'policy_required',
        'sso',
        'session_verified',
        'exempt',
        'not_enrolled',
        'locked',
        'state_unavailable',
      ]),
    );
  });

  it.each([...SECOND_FACTOR_AMR])('counts amr %s as a second factor', (value) => {
    const login: LoginFacts = { method: 'sso', appId: 'jira', amr: ['pwd', value] };
    expect(isSsoSkipAllowed(login, { enabled: true, requireMfaAmr: true })).toBe(true);
  });
});

describe('combineLocks', () => {
  const early: Lock = { until: '2026-11-28T09:05:00.000Z' };
  const late: Lock = { until: '2026-11-28T10:00:00.000Z' };
  const permanent: Lock = { until: null };
  it.each([
    ['no locks', [], null],
    ['none anywhere', [null, null], null],
    ['the later end', [early, late], late],
    ['the later end, either order', [late, null, early], late],
    ['a permanent lock over any end', [late, permanent, early], permanent],
    ['a known lock over unknown parts', [UNKNOWN, early], early],
    ['unknown when nothing is known to be locked', [null, UNKNOWN], UNKNOWN],
  ] as [string, (Lock | null | Unknown)[], Lock | null | Unknown][])('takes %s', (_name, locks, expected) => {
    expect(combineLocks(locks)).toEqual(expected);
  });
});

// Properties over every combination of login, policy and partly unknown state.
const maybeUnknown = <T>(...values: T[]) => fc.constantFrom<T | Unknown>(...values, UNKNOWN);
const groupNames = ['admins', 'contractors', 'dev'];
const ruleMap = (keys: string[]) =>
  fc
    .array(fc.tuple(fc.constantFrom(...keys), fc.constantFrom('require' as const, 'exempt' as const)), {
      maxLength: 3,
    })
    .map((entries) => new Map(entries));

const arbitraryInput: fc.Arbitrary<SecondFactorInput> = fc.record({
  login: fc.record({
    method: fc.constantFrom(
      'password' as const,
      'sso' as const,
      'remember_me' as const,
      'api_token' as const,
    ),
    appId: fc.constantFrom('jira', 'confluence'),
    idp: fc.constantFrom(undefined, 'okta', 'evil-idp'),
    amr: fc.constantFrom(undefined, [], ['pwd'], ['pwd', 'mfa'], ['hwk']),
    groups: fc.subarray(groupNames),
  }),
  policy: fc.record({
    defaultMode: fc.constantFrom('require' as const, 'optional' as const),
    skipOnSso: fc.record({
      enabled: fc.boolean(),
      trustedIdps: fc.constantFrom(undefined, [], ['okta']),
      requireMfaAmr: fc.boolean(),
    }),
    userRule: fc.constantFrom(undefined, 'require' as const, 'exempt' as const),
    groupRules: ruleMap(groupNames),
    appRules: ruleMap(['jira', 'confluence']),
  }),
  state: fc.record({
    sessionVerified: maybeUnknown(true, false),
    enrolled: maybeUnknown(true, false),
    lock: maybeUnknown<Lock | null>(null, { until: UNTIL }, { until: null }),
    forceSecondFactor: maybeUnknown(true, false),
  }),
});

// Every way the unknown parts of the state could have turned out.
function resolutions(state: SecondFactorState): SecondFactorState[] {
  const options = {
    sessionVerified: state.sessionVerified === UNKNOWN ? [true, false] : [state.sessionVerified],
    enrolled: state.enrolled === UNKNOWN ? [true, false] : [state.enrolled],
    lock: state.lock === UNKNOWN ? [null, { until: UNTIL }, { until: null }] : [state.lock],
    forceSecondFactor: state.forceSecondFactor === UNKNOWN ? [true, false] : [state.forceSecondFactor],
  };
  return options.sessionVerified.flatMap((sessionVerified) =>
    options.enrolled.flatMap((enrolled) =>
      options.lock.flatMap((lock) =>
        options.forceSecondFactor.map((forceSecondFactor) => ({
          sessionVerified,
          enrolled,
          lock,
          forceSecondFactor,
        })),
      ),
    ),
  );
}

const hasUnknown = (state: SecondFactorState) => Object.values(state).includes(UNKNOWN);

describe('decideSecondFactor properties', () => {
  it('fails closed: an answer given despite unknown state holds however that state turns out', () => {
    fc.assert(
      fc.property(arbitraryInput, (given) => {
        const decided = decideSecondFactor(given);
        if (decided.reason === 'state_unavailable') return;
        for (const state of resolutions(given.state)) {
          expect(decideSecondFactor({ ...given, state }).decision).toBe(decided.decision);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('says state_unavailable only when some state is unknown, and then challenges', () => {
    fc.assert(
      fc.property(arbitraryInput, (given) => {
        const decided = decideSecondFactor(given);
        if (decided.reason === 'state_unavailable') {
          expect(hasUnknown(given.state)).toBe(true);
          expect(decided.decision).toBe('challenge');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never skips a locked or possibly locked user, nor one who is or may be forced', () => {
    fc.assert(
      fc.property(arbitraryInput, (given) => {
        if (given.state.lock === null && given.state.forceSecondFactor === false) return;
        expect(decideSecondFactor(given).decision).not.toBe('skip');
      }),
      { numRuns: 2000 },
    );
  });

  it('skips on SSO only for sso logins', () => {
    fc.assert(
      fc.property(arbitraryInput, (given) => {
        if (decideSecondFactor(given).reason === 'sso') expect(given.login.method).toBe('sso');
      }),
      { numRuns: 2000 },
    );
  });
});
