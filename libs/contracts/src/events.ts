import Type, { type Static } from 'typebox';
import { APP_ID_PATTERN, MAX_USERNAME_LENGTH, SESSION_HASH_PATTERN } from './names.js';

// Event payload schemas of CONTRACT.md. Extra fields are allowed ("more may be added"),
// required ones are checked strictly: a consumer never guesses at a missing field.

export const AppId = Type.String({ pattern: APP_ID_PATTERN, description: 'e.g. jira, confluence' });
export const SessionHash = Type.String({
  pattern: SESSION_HASH_PATTERN,
  description: 'lowercase hex SHA-256 of the SSO token',
});
export const IpAddress = Type.String({ format: 'ip', description: 'IPv4 or IPv6 address of the client' });
export const IsoTime = Type.String({ format: 'date-time' });
/**
 * How far ahead of the receiver's clock an event's `time` may be: the api refuses later ones,
 * the session broadcaster does not believe them. Apps' clocks drift; years do not.
 */
export const MAX_EVENT_TIME_AHEAD_MS = 5 * 60_000;
export const Username = Type.String({ minLength: 1, maxLength: MAX_USERNAME_LENGTH });

const open = { additionalProperties: true } as const;

export const LoginSucceededData = Type.Object(
  {
    appId: AppId,
    session: SessionHash,
    method: Type.Union([
      Type.Literal('password'),
      Type.Literal('sso'),
      Type.Literal('remember_me'),
      Type.Literal('api_token'),
    ]),
    ip: IpAddress,
    idp: Type.Optional(Type.String({ maxLength: 512 })),
    amr: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    userAgent: Type.Optional(Type.String({ maxLength: 1024 })),
    groups: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 1000 })),
  },
  open,
);

export const LoginFailedData = Type.Object(
  {
    appId: AppId,
    ip: IpAddress,
    reason: Type.Union([
      Type.Literal('bad_password'),
      Type.Literal('unknown_user'),
      Type.Literal('disabled'),
    ]),
    session: Type.Optional(SessionHash),
    userAgent: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  open,
);

export const LogoutData = Type.Object({ appId: AppId, session: SessionHash }, open);

export const Decision = Type.Union([
  Type.Literal('challenge'),
  Type.Literal('skip'),
  Type.Literal('enroll'),
  Type.Literal('deny'),
]);
export const DecisionReason = Type.Union([
  Type.Literal('policy_required'),
  Type.Literal('sso'),
  Type.Literal('session_verified'),
  Type.Literal('exempt'),
  Type.Literal('not_enrolled'),
  Type.Literal('locked'),
  Type.Literal('state_unavailable'),
]);

export const SecondFactorDecidedData = Type.Object(
  {
    loginEventId: Type.String({ minLength: 1 }),
    appId: AppId,
    session: SessionHash,
    decision: Decision,
    reason: DecisionReason,
    challengeId: Type.Optional(Type.String({ minLength: 1 })),
    lockedUntil: Type.Optional(Type.Union([IsoTime, Type.Null()])),
  },
  open,
);

export const SecondFactorVerifiedData = Type.Object(
  {
    appId: AppId,
    session: SessionHash,
    method: Type.Union([Type.Literal('totp'), Type.Literal('backup_code')]),
    challengeId: Type.Optional(Type.String()),
  },
  open,
);

export const SecondFactorFailedData = Type.Object(
  {
    appId: AppId,
    session: SessionHash,
    ip: IpAddress,
    reason: Type.Union([
      Type.Literal('bad_code'),
      Type.Literal('replayed'),
      Type.Literal('expired'),
      Type.Literal('locked'),
    ]),
    challengeId: Type.Optional(Type.String()),
  },
  open,
);

export const EnrollmentActivatedData = Type.Object(
  { method: Type.Optional(Type.Union([Type.Literal('generated'), Type.Literal('imported')])) },
  open,
);
export const EnrollmentResetData = Type.Object({ by: Type.Optional(Type.String()) }, open);

export const LockoutScope = Type.Union([Type.Literal('user'), Type.Literal('ip'), Type.Literal('user_ip')]);

export const LockoutImposedData = Type.Object(
  {
    scope: LockoutScope,
    key: Type.String({ minLength: 1 }),
    until: Type.Union([IsoTime, Type.Null()]),
    failures: Type.Integer({ minimum: 0 }),
    rule: Type.String({ minLength: 1 }),
  },
  open,
);

export const LockoutLiftedData = Type.Object(
  {
    scope: LockoutScope,
    key: Type.String({ minLength: 1 }),
    by: Type.Union([Type.Literal('expiry'), Type.Literal('admin')]),
  },
  open,
);

export const AttackDetectedData = Type.Object(
  {
    kind: Type.Union([
      Type.Literal('credential_stuffing'),
      Type.Literal('password_spraying'),
      Type.Literal('brute_force'),
    ]),
    key: Type.String({ minLength: 1 }),
    evidence: Type.Record(Type.String(), Type.Unknown()),
  },
  open,
);

export const SessionValidatedData = Type.Object(
  {
    session: SessionHash,
    username: Username,
    appId: AppId,
    verifiedAt: IsoTime,
    expiresAt: IsoTime,
  },
  open,
);

export const SessionRevokedData = Type.Object(
  {
    session: SessionHash,
    reason: Type.Union([Type.Literal('logout'), Type.Literal('lockout'), Type.Literal('admin')]),
  },
  open,
);

export const AdminActionData = Type.Record(Type.String(), Type.Unknown());

/** Payload schema of each event type. */
export const EVENT_DATA_SCHEMAS = {
  'twofold.login.succeeded': LoginSucceededData,
  'twofold.login.failed': LoginFailedData,
  'twofold.logout': LogoutData,
  'twofold.2fa.decided': SecondFactorDecidedData,
  'twofold.2fa.verified': SecondFactorVerifiedData,
  'twofold.2fa.failed': SecondFactorFailedData,
  'twofold.enrollment.activated': EnrollmentActivatedData,
  'twofold.enrollment.reset': EnrollmentResetData,
  'twofold.lockout.imposed': LockoutImposedData,
  'twofold.lockout.lifted': LockoutLiftedData,
  'twofold.attack.detected': AttackDetectedData,
  'twofold.session.validated': SessionValidatedData,
  'twofold.session.revoked': SessionRevokedData,
} as const;

export const ADMIN_EVENT_PREFIX = 'twofold.admin.';

export type KnownEventType = keyof typeof EVENT_DATA_SCHEMAS;
export type AdminEventType = `twofold.admin.${string}`;
export type EventType = KnownEventType | AdminEventType;
export type EventData<T extends EventType> = T extends KnownEventType
  ? Static<(typeof EVENT_DATA_SCHEMAS)[T]>
  : Static<typeof AdminActionData>;

/** A CloudEvents 1.0 event (structured mode) as CONTRACT.md defines it. */
export interface TwofoldEvent<T extends EventType = EventType> {
  specversion: '1.0';
  id: string;
  type: T;
  source: string;
  subject: string;
  time: string;
  datacontenttype?: 'application/json';
  data: EventData<T>;
}

/** Any event, discriminated by `type`. */
export type AnyTwofoldEvent =
  { [K in KnownEventType]: TwofoldEvent<K> }[KnownEventType] | TwofoldEvent<AdminEventType>;

export type LoginSucceeded = Static<typeof LoginSucceededData>;
export type LoginFailed = Static<typeof LoginFailedData>;
export type SecondFactorDecided = Static<typeof SecondFactorDecidedData>;
export type DecisionKind = Static<typeof Decision>;
export type DecisionReasonKind = Static<typeof DecisionReason>;

export const EnvelopeSchema = Type.Object(
  {
    specversion: Type.Literal('1.0'),
    id: Type.String({ minLength: 1, maxLength: 200 }),
    type: Type.String({ minLength: 1, maxLength: 200 }),
    source: Type.String({ pattern: '^(app|service)/[a-z0-9][a-z0-9-]{0,62}$' }),
    subject: Username,
    time: IsoTime,
    datacontenttype: Type.Optional(Type.Literal('application/json')),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  open,
);
