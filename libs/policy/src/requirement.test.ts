import { describe, expect, it } from 'vitest';
import { resolveRequirement, type RequirementRules, type ResolvedRequirement } from './requirement.js';

const none = new Map<string, never>();

function rules(overrides: Partial<RequirementRules>): RequirementRules {
  return { defaultMode: 'optional', groupRules: none, appRules: none, ...overrides };
}

describe('resolveRequirement', () => {
  const cases: [string, RequirementRules, string[], ResolvedRequirement][] = [
    [
      'the default when nothing else applies',
      rules({ defaultMode: 'require' }),
      [],
      { requirement: 'require', source: 'default' },
    ],
    ['an optional default', rules({}), ['dev'], { requirement: 'optional', source: 'default' }],
    [
      'the app rule over the default',
      rules({ defaultMode: 'require', appRules: new Map([['jira', 'exempt']]) }),
      [],
      { requirement: 'exempt', source: 'app' },
    ],
    [
      'only the rule of this app',
      rules({ appRules: new Map([['bitbucket', 'require']]) }),
      [],
      { requirement: 'optional', source: 'default' },
    ],
    [
      'a group rule over the app rule',
      rules({ groupRules: new Map([['dev', 'exempt']]), appRules: new Map([['jira', 'require']]) }),
      ['dev'],
      { requirement: 'exempt', source: 'group' },
    ],
    [
      'only the rules of the user’s groups',
      rules({ groupRules: new Map([['ops', 'exempt']]), appRules: new Map([['jira', 'require']]) }),
      ['dev'],
      { requirement: 'require', source: 'app' },
    ],
    [
      'require over exempt across groups, exempt listed first',
      rules({
        groupRules: new Map([
          ['contractors', 'exempt'],
          ['admins', 'require'],
        ]),
      }),
      ['contractors', 'admins'],
      { requirement: 'require', source: 'group' },
    ],
    [
      'require over exempt across groups, exempt listed last',
      rules({
        groupRules: new Map([
          ['contractors', 'exempt'],
          ['admins', 'require'],
        ]),
      }),
      ['admins', 'contractors'],
      { requirement: 'require', source: 'group' },
    ],
    [
      'the user rule over every group',
      rules({ userRule: 'exempt', groupRules: new Map([['admins', 'require']]) }),
      ['admins'],
      { requirement: 'exempt', source: 'user' },
    ],
    [
      'a user require over a group exempt',
      rules({ userRule: 'require', groupRules: new Map([['contractors', 'exempt']]) }),
      ['contractors'],
      { requirement: 'require', source: 'user' },
    ],
    [
      'group names as given, not Object.prototype members',
      rules({ defaultMode: 'require' }),
      ['constructor', '__proto__', 'toString'],
      { requirement: 'require', source: 'default' },
    ],
  ];

  it.each(cases)('takes %s', (_name, given, groups, expected) => {
    expect(resolveRequirement(given, { appId: 'jira', groups })).toEqual(expected);
  });

  it('treats missing groups as none', () => {
    expect(resolveRequirement(rules({}), { appId: 'jira' })).toEqual({
      requirement: 'optional',
      source: 'default',
    });
  });
});
