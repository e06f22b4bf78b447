import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  APP_ID_PATTERN,
  PolicySettingsSchema,
  RuleModeSchema,
  normalizeUsername,
  type PolicySettings,
} from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import { LockoutRulesError, resolveLockoutRules } from '@twofold/lockout';
import type { PolicyRepository, RuleKind } from '@twofold/store';
import { mergeSettings, toPolicyView, type PolicySnapshot } from '@twofold/verification';
import type { Authenticator } from '../auth.js';
import { publishAdminEvent } from '../admin-events.js';
import { problems } from '../problem.js';

const Rule = Type.Object({ mode: RuleModeSchema }, { additionalProperties: false });
const RuleView = Type.Object({
  kind: Type.String(),
  subject: Type.String(),
  mode: Type.String(),
  updatedAt: Type.String(),
});
const PolicyView = Type.Object({
  settings: PolicySettingsSchema,
  rules: Type.Array(RuleView),
  version: Type.String(),
});
const SettingsPatch = Type.Partial(PolicySettingsSchema, { additionalProperties: false });

const KINDS: Record<string, RuleKind> = { users: 'user', groups: 'group', apps: 'app' };

/**
 * The admin policy: global settings, and rules per user, group and app. Changes are
 * audited (twofold.admin.v1) and reach every replica within a second (policy version).
 * A change is announced inside its transaction and committed only once announced: one
 * that cannot be audited (Kafka) is rolled back and answered 503, so the retry applies it.
 */
export function adminPolicyRoute(deps: {
  auth: Authenticator;
  policies: PolicyRepository;
  snapshot: PolicySnapshot;
  producer: EventProducer;
}): FastifyPluginAsyncTypebox {
  /** A change's `beforeCommit`: publishes its admin event; refused, the change is rolled back. */
  const audited = (type: string, subject: string, data: Record<string, unknown>) => ({
    beforeCommit: () => publishAdminEvent(deps.producer, `twofold.admin.${type}`, subject, data),
  });

  return async (app) => {
    app.get(
      '/v1/admin/policy',
      {
        schema: {
          tags: ['admin'],
          summary: 'The global policy and every rule',
          response: { 200: PolicyView },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const stored = await deps.policies.load();
        return {
          settings: toPolicyView(stored).settings,
          version: stored.version,
          rules: stored.rules.map((r) => ({ ...r, updatedAt: r.updatedAt.toISOString() })),
        };
      },
    );

    app.put(
      '/v1/admin/policy',
      {
        schema: {
          tags: ['admin'],
          summary: 'Change global settings (fields not sent are kept)',
          body: SettingsPatch,
          response: { 200: Type.Object({ settings: PolicySettingsSchema }) },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const current = toPolicyView(await deps.policies.load()).settings;
        const next: PolicySettings = mergeSettings(current, request.body as Partial<PolicySettings>);
        // The lockout detector applies these thresholds: refuse what it would refuse.
        try {
          resolveLockoutRules(next.lockout);
        } catch (err) {
          if (err instanceof LockoutRulesError) throw problems.invalid(`lockout: ${err.problems.join('; ')}`);
          throw err;
        }
        await deps.policies.saveSettings(
          next,
          'admin',
          audited('policy_changed', 'admin', { settings: next }),
        );
        await deps.snapshot.reload();
        return { settings: next };
      },
    );

    const Params = Type.Object({
      kind: Type.Union([Type.Literal('users'), Type.Literal('groups'), Type.Literal('apps')]),
      subject: Type.String({ minLength: 1, maxLength: 256 }),
    });
    const subjectOf = (kind: RuleKind, raw: string) => {
      if (kind === 'user') return normalizeUsername(raw);
      if (kind === 'app' && !new RegExp(APP_ID_PATTERN).test(raw))
        throw problems.invalid(`"${raw}" is not an app id`);
      return raw; // group names compare exactly, as the IdP or Crowd sends them
    };

    app.put(
      '/v1/admin/policy/:kind/:subject',
      {
        schema: {
          tags: ['admin'],
          summary: 'Set the rule of a user, group or app (require | exempt)',
          params: Params,
          body: Rule,
          response: {
            200: Type.Object({ kind: Type.String(), subject: Type.String(), mode: Type.String() }),
          },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const kind = KINDS[request.params.kind]!;
        const subject = subjectOf(kind, request.params.subject);
        const { mode } = request.body;
        await deps.policies.setRule(
          kind,
          subject,
          mode,
          'admin',
          audited('policy_rule_set', 'admin', { kind, subject, mode }),
        );
        await deps.snapshot.reload();
        return { kind, subject, mode: request.body.mode };
      },
    );

    app.delete(
      '/v1/admin/policy/:kind/:subject',
      {
        schema: {
          tags: ['admin'],
          summary: 'Remove the rule of a user, group or app',
          params: Params,
          response: { 204: Type.Null({ description: 'removed' }) },
        },
      },
      async (request, reply) => {
        await deps.auth.requireAdmin(request);
        const kind = KINDS[request.params.kind]!;
        const subject = subjectOf(kind, request.params.subject);
        if (
          !(await deps.policies.deleteRule(
            kind,
            subject,
            audited('policy_rule_removed', 'admin', { kind, subject }),
          ))
        )
          throw problems.notFound(`no rule for ${kind} ${subject}`);
        await deps.snapshot.reload();
        return reply.code(204).send(null);
      },
    );
  };
}
