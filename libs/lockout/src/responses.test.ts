import { describe, expect, it } from 'vitest';
import {
  LOCKOUT_RULE,
  backoffSchedule,
  decideFailureResponses,
  decideRedeliveredFailureResponses,
  lockDurationMs,
  type FailureFacts,
} from './responses.js';
import { DEFAULT_LOCKOUT_RULES as rules } from './rules.js';

// Defaults: (user, IP) 5 failures; many sources 10; NIST 100 (10 from known networks);
// IP 20 distinct users; network 50 distinct users.
const quiet: FailureFacts = {
  knownNetwork: false,
  streak: 1,
  streakFromKnownNetworks: 0,
  pairFailures: 1,
  userSources: 1,
  ipUsers: 1,
  networkUsers: 1,
  existing: {
    userLock: 'none',
    forceSecondFactor: false,
    userIpLock: false,
    ipBlock: false,
    networkBlock: false,
  },
};
type Over = Omit<Partial<FailureFacts>, 'existing'> & { existing?: Partial<FailureFacts['existing']> };
const facts = (over: Over): FailureFacts => ({
  ...quiet,
  ...over,
  existing: { ...quiet.existing, ...over.existing },
});
const kinds = (over: Over) => decideFailureResponses(rules, facts(over)).map((r) => `${r.kind}:${r.rule}`);

describe('decideFailureResponses', () => {
  it.each<[string, Over, string[]]>([
    ['a typo', {}, []],
    ['a real user who mistyped twice', { pairFailures: 2, streak: 2 }, []],
    // (user, IP) backoff
    ['(user, IP): one below the threshold', { pairFailures: 4, streak: 4 }, []],
    ['(user, IP): at the threshold', { pairFailures: 5, streak: 5 }, ['user_ip:user_ip_backoff']],
    [
      '(user, IP): above it, after the lock expired (level-triggered)',
      { pairFailures: 9 },
      ['user_ip:user_ip_backoff'],
    ],
    ['(user, IP): already locked', { pairFailures: 9, existing: { userIpLock: true } }, []],
    ['(user, IP): never on a known-good network', { pairFailures: 50, knownNetwork: true }, []],
    // many sources → force the second factor
    ['sources: one below', { userSources: 9 }, []],
    ['sources: at the threshold', { userSources: 10 }, ['force_second_factor:many_sources']],
    ['sources: already forced', { userSources: 40, existing: { forceSecondFactor: true } }, []],
    // NIST bound
    ['NIST: 99 consecutive', { streak: 99 }, []],
    ['NIST: 100 consecutive, from elsewhere', { streak: 100 }, ['user:consecutive_failures']],
    [
      'NIST: 100, of which 9 from home',
      { streak: 100, streakFromKnownNetworks: 9 },
      ['user:consecutive_failures'],
    ],
    [
      'NIST: 100, of which 10 from home',
      { streak: 100, streakFromKnownNetworks: 10 },
      ['user:consecutive_failures_known_networks'],
    ],
    [
      'NIST: locked already (spares home)',
      { streak: 150, existing: { userLock: 'spares_known_networks' } },
      [],
    ],
    [
      'NIST: widened once home failures reach 10',
      { streak: 150, streakFromKnownNetworks: 10, existing: { userLock: 'spares_known_networks' } },
      ['user_widen:consecutive_failures_known_networks'],
    ],
    [
      'NIST: locked everywhere already',
      { streak: 150, streakFromKnownNetworks: 50, existing: { userLock: 'every_network' } },
      [],
    ],
    // credential stuffing
    ['IP: 19 users', { ipUsers: 19 }, []],
    ['IP: 20 users', { ipUsers: 20 }, ['ip:credential_stuffing_ip']],
    ['IP: blocked already', { ipUsers: 80, existing: { ipBlock: true } }, []],
    ['network: 49 users', { networkUsers: 49 }, []],
    ['network: 50 users', { networkUsers: 50 }, ['network:credential_stuffing_network']],
    ['network: blocked already', { networkUsers: 50, existing: { networkBlock: true } }, []],
    [
      'everything at once',
      { pairFailures: 5, userSources: 10, streak: 100, ipUsers: 20, networkUsers: 50 },
      [
        'user_ip:user_ip_backoff',
        'force_second_factor:many_sources',
        'user:consecutive_failures',
        'ip:credential_stuffing_ip',
        'network:credential_stuffing_network',
      ],
    ],
  ])('%s', (_name, over, expected) => {
    expect(kinds(over)).toEqual(expected);
  });

  it('spares known networks unless the streak came from them', () => {
    const [lock] = decideFailureResponses(rules, facts({ streak: 100 }));
    expect(lock).toEqual({
      kind: 'user',
      rule: LOCKOUT_RULE.consecutiveFailures,
      failures: 100,
      sparesKnownNetworks: true,
    });
    const [home] = decideFailureResponses(
      rules,
      facts({ streak: 100, streakFromKnownNetworks: 100, knownNetwork: true }),
    );
    expect(home).toMatchObject({ kind: 'user', sparesKnownNetworks: false });
  });

  it('carries the evidence of attacks', () => {
    const [force, ip] = decideFailureResponses(rules, facts({ userSources: 12, streak: 30, ipUsers: 25 }));
    expect(force).toMatchObject({
      evidence: { distinctSources: 12, windowSeconds: 3600, consecutiveFailures: 30 },
    });
    expect(ip).toMatchObject({
      failures: 25,
      evidence: { distinctUsers: 25, windowSeconds: 600 },
    });
  });
});

describe('decideRedeliveredFailureResponses', () => {
  const redelivered = (over: Omit<Over, 'existing'>, userLock: FailureFacts['existing']['userLock']) =>
    decideRedeliveredFailureResponses(rules, facts(over), userLock).map((r) => `${r.kind}:${r.rule}`);

  it.each<[string, Omit<Over, 'existing'>, FailureFacts['existing']['userLock'], string[]]>([
    [
      'asks as if nothing were in force',
      { pairFailures: 5, ipUsers: 20 },
      'none',
      ['user_ip:user_ip_backoff', 'ip:credential_stuffing_ip'],
    ],
    [
      'a user lock that spares home: asks to impose, not widen',
      { streak: 150, streakFromKnownNetworks: 10 },
      'spares_known_networks',
      ['user:consecutive_failures_known_networks'],
    ],
    [
      'a user lock on every network: asks to widen too (it may have widened it)',
      { streak: 150, streakFromKnownNetworks: 10 },
      'every_network',
      ['user:consecutive_failures_known_networks', 'user_widen:consecutive_failures_known_networks'],
    ],
    [
      'a user lock on every network, home failures below 10: no widen',
      { streak: 150, streakFromKnownNetworks: 9 },
      'every_network',
      ['user:consecutive_failures'],
    ],
  ])('%s', (_name, over, userLock, expected) => {
    expect(redelivered(over, userLock)).toEqual(expected);
  });
});

describe('backoff', () => {
  it.each([
    [60, 3600, [60, 120, 240, 480, 960, 1920, 3600]],
    [60, 60, [60]],
    [60, 61, [60, 61]],
    [900, 86_400, [900, 1800, 3600, 7200, 14_400, 28_800, 57_600, 86_400]],
  ])('doubles from %i s up to %i s', (base, max, seconds) => {
    expect(backoffSchedule(base, max)).toEqual(seconds.map((s) => s * 1000));
  });

  it.each([
    [1, 0, 60_000],
    [2, 0, 120_000],
    [7, 0, 3_600_000],
    [50, 0, 3_600_000],
    [3, 3, 240_000],
    [4, 3, null],
    [0, 0, 60_000],
  ])('level %i with permanent after %i → %s', (level, after, ms) => {
    expect(lockDurationMs(backoffSchedule(60, 3600), level, after)).toBe(ms);
  });
});
