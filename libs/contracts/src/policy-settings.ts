import Type, { type Static } from 'typebox';

/** The global policy of GET/PUT /v1/admin/policy. */
export const PolicySettingsSchema = Type.Object(
  {
    defaultMode: Type.Union([Type.Literal('require'), Type.Literal('optional')], {
      description: 'require: everyone needs a second factor; optional: only users who enrolled',
    }),
    skipOnSso: Type.Object(
      {
        enabled: Type.Boolean({ description: 'skip the prompt for logins with method "sso"' }),
        trustedIdps: Type.Optional(
          Type.Array(Type.String({ minLength: 1, maxLength: 512 }), {
            maxItems: 100,
            description: 'only these IdPs count; unset trusts every IdP',
          }),
        ),
        requireMfaAmr: Type.Boolean({
          description: 'only skip when the IdP asserted a second factor in amr',
        }),
      },
      { additionalProperties: false },
    ),
    sessionTtlSeconds: Type.Integer({
      minimum: 60,
      maximum: 30 * 86_400,
      description: 'how long a verified SSO session skips the prompt in every app',
    }),
    lockout: Type.Record(Type.String(), Type.Unknown(), {
      description: 'lockout thresholds (see the lockout detector); unknown keys are refused by it',
    }),
  },
  { additionalProperties: false },
);
export type PolicySettings = Static<typeof PolicySettingsSchema>;

/** Secure defaults: everyone needs a second factor; IdP logins are trusted to have done it. */
export const DEFAULT_POLICY_SETTINGS: PolicySettings = Object.freeze({
  defaultMode: 'require',
  skipOnSso: { enabled: true, requireMfaAmr: false },
  sessionTtlSeconds: 8 * 3600,
  lockout: {},
}) as PolicySettings;

export const RuleModeSchema = Type.Union([Type.Literal('require'), Type.Literal('exempt')]);
export type RuleModeValue = Static<typeof RuleModeSchema>;
