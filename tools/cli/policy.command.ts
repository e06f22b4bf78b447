import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import type { PolicySettings } from '@twofold/contracts';
import type { CliContext } from './context.js';
import { formatTable } from './output.js';
import { CliError } from './settings.js';

interface PolicyView {
  settings: PolicySettings;
  rules: { kind: string; subject: string; mode: string; updatedAt: string }[];
  version: string;
}

const KIND_PATHS = { user: 'users', group: 'groups', app: 'apps' } as const;
type Kind = keyof typeof KIND_PATHS;

/** `8h`, `30m`, `1d`, `90s` or plain seconds. */
export function parseDuration(value: string): number {
  const match = /^(\d+)\s*(s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('give a duration like 8h, 30m, 1d or a number of seconds');
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

function parseSwitch(value: string): boolean {
  if (/^(on|true|yes)$/i.test(value)) return true;
  if (/^(off|false|no)$/i.test(value)) return false;
  throw new InvalidArgumentError('say on or off');
}

function parseJsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('give a JSON object, e.g. \'{"userFailures": 10}\'');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new InvalidArgumentError('give a JSON object');
  return parsed as Record<string, unknown>;
}

const ttl = (seconds: number) =>
  seconds % 86_400 === 0
    ? `${seconds / 86_400}d`
    : seconds % 3600 === 0
      ? `${seconds / 3600}h`
      : `${seconds}s`;

function describeSettings(settings: PolicySettings): string[] {
  const sso = settings.skipOnSso;
  return [
    `default:        ${settings.defaultMode} (${settings.defaultMode === 'require' ? 'everyone needs a second factor' : 'only users who enrolled'})`,
    `skip on SSO:    ${sso.enabled ? 'on' : 'off'}${sso.enabled && sso.trustedIdps ? ` (IdPs: ${sso.trustedIdps.join(', ')})` : ''}${sso.enabled && sso.requireMfaAmr ? ' (only when the IdP asserted MFA)' : ''}`,
    `session TTL:    ${ttl(settings.sessionTtlSeconds)}`,
    `lockout:        ${Object.keys(settings.lockout).length ? JSON.stringify(settings.lockout) : 'detector defaults'}`,
  ];
}

/** `twofold policy get|set|unset`: who must use the second factor. */
export function policyCommand(ctx: CliContext): Command {
  const policy = new Command('policy').description(
    'who must use the second factor: the global default and rules per user, group and app',
  );

  policy
    .command('get')
    .description('show the global settings and every rule')
    .option('--json', 'print the answer as JSON')
    .action(async (options: { json?: boolean }) => {
      const view = await ctx.admin<PolicyView>('GET', '/v1/admin/policy');
      if (options.json) return ctx.io.out(JSON.stringify(view, null, 2));
      ctx.io.out(describeSettings(view.settings).join('\n'));
      ctx.io.out('');
      ctx.io.out(
        view.rules.length
          ? formatTable(
              ['kind', 'subject', 'mode', 'updated'],
              view.rules.map((r) => [r.kind, r.subject, r.mode, r.updatedAt.slice(0, 19).replace('T', ' ')]),
            )
          : 'no rules: the default applies to everyone (precedence: user, then group, then app, then default)',
      );
    });

  const set = policy
    .command('set')
    .description('change the global settings, or set the rule of a user, group or app')
    .addHelpText(
      'after',
      `
Examples:
  twofold policy set global --default require --session-ttl 8h
  twofold policy set global --skip-on-sso on --trusted-idp okta --trusted-idp azure-ad
  twofold policy set user alice exempt
  twofold policy set group contractors require
  twofold policy set app bitbucket require`,
    );

  set
    .command('global')
    .description('change global settings (only what you pass changes)')
    .addOption(
      new Option('--default <mode>', 'who needs a second factor by default').choices(['require', 'optional']),
    )
    .option('--skip-on-sso <on|off>', 'skip the prompt for logins through an IdP', parseSwitch)
    .option(
      '--trusted-idp <idp>',
      'only these IdPs count for skipping (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .option(
      '--require-mfa-amr <on|off>',
      'skip only when the IdP asserted a second factor (amr)',
      parseSwitch,
    )
    .option(
      '--session-ttl <duration>',
      'how long a verified session skips the prompt (e.g. 8h)',
      parseDuration,
    )
    .option('--lockout <json>', 'lockout thresholds for the detector, as a JSON object', parseJsonObject)
    .option('--json', 'print the new settings as JSON')
    .action(
      async (options: {
        default?: 'require' | 'optional';
        skipOnSso?: boolean;
        trustedIdp?: string[];
        requireMfaAmr?: boolean;
        sessionTtl?: number;
        lockout?: Record<string, unknown>;
        json?: boolean;
      }) => {
        const changesSso =
          options.skipOnSso !== undefined ||
          options.trustedIdp !== undefined ||
          options.requireMfaAmr !== undefined;
        if (!options.default && !changesSso && options.sessionTtl === undefined && !options.lockout) {
          throw new CliError(
            'say what to change: --default, --skip-on-sso, --trusted-idp, --require-mfa-amr, --session-ttl or --lockout (see twofold policy set global --help)',
            2,
          );
        }
        const patch: Partial<PolicySettings> = {};
        if (options.default) patch.defaultMode = options.default;
        if (options.sessionTtl !== undefined) patch.sessionTtlSeconds = options.sessionTtl;
        if (options.lockout) patch.lockout = options.lockout;
        if (changesSso) {
          // skipOnSso is replaced as a whole: start from what is set.
          const current = (await ctx.admin<PolicyView>('GET', '/v1/admin/policy')).settings.skipOnSso;
          patch.skipOnSso = {
            ...current,
            ...(options.skipOnSso !== undefined ? { enabled: options.skipOnSso } : {}),
            ...(options.trustedIdp ? { trustedIdps: options.trustedIdp } : {}),
            ...(options.requireMfaAmr !== undefined ? { requireMfaAmr: options.requireMfaAmr } : {}),
          };
        }
        const { settings } = await ctx.admin<{ settings: PolicySettings }>('PUT', '/v1/admin/policy', patch);
        if (options.json) return ctx.io.out(JSON.stringify(settings, null, 2));
        ctx.io.out(describeSettings(settings).join('\n'));
      },
    );

  for (const kind of ['user', 'group', 'app'] as const) {
    set
      .command(kind)
      .description(`set the rule of one ${kind}`)
      .argument(
        '<subject>',
        kind === 'user'
          ? 'the username'
          : kind === 'group'
            ? 'the group name, as the IdP sends it'
            : 'the app id',
      )
      .addArgument(new Argument('<mode>', 'require or exempt').choices(['require', 'exempt']))
      .action(async (subject: string, mode: string) => {
        const rule = await ctx.admin<{ kind: string; subject: string; mode: string }>(
          'PUT',
          `/v1/admin/policy/${KIND_PATHS[kind]}/${encodeURIComponent(subject)}`,
          { mode },
        );
        ctx.io.out(`${rule.kind} ${rule.subject}: ${rule.mode}`);
      });
  }

  policy
    .command('unset')
    .description('remove the rule of a user, group or app (the next rule or the default applies)')
    .addArgument(new Argument('<kind>', 'user, group or app').choices(['user', 'group', 'app']))
    .argument('<subject>', 'the username, group name or app id')
    .action(async (kind: Kind, subject: string) => {
      await ctx.admin('DELETE', `/v1/admin/policy/${KIND_PATHS[kind]}/${encodeURIComponent(subject)}`);
      ctx.io.out(`removed the rule of ${kind} ${subject}`);
    });
  return policy;
}
