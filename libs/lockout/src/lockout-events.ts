import { createHash } from 'node:crypto';
import { createEvent, type TwofoldEvent } from '@twofold/contracts';

export const LOCKOUT_DETECTOR_SOURCE = 'service/lockout-detector';

/** Subject (and Kafka key) of deployment-wide security events such as password spraying. */
export const GLOBAL_SUBJECT = 'global';

export type LockoutScope = 'user' | 'user_ip' | 'ip';
/** `deny`: logins are refused; `force_second_factor`: no skips, the code is always asked. */
export type LockoutMode = 'deny' | 'force_second_factor';

/** A lockout as the events carry it (the state's records satisfy this shape). */
export interface LockoutFacts {
  /** Stable id of this lockout instance (the same across redeliveries of its cause). */
  readonly lockId: string;
  readonly scope: LockoutScope;
  /** user: username; user_ip: `username|ip`; ip: an IP or a network in CIDR form. */
  readonly key: string;
  readonly mode: LockoutMode;
  readonly rule: string;
  /** ISO time, or null for permanent. */
  readonly until: string | null;
  readonly failures: number;
  readonly level: number;
  /** For user locks: whether the user's known-good networks are spared. */
  readonly sparesKnownNetworks?: boolean | undefined;
}

/**
 * A UUID (RFC 9562 version 8) derived from `parts`: the same cause always yields the same
 * event id, so an event republished after a crash is the same event to every consumer.
 */
export function deterministicEventId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\n')).digest('hex');
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** `username|ip`, the key of a (user, IP) lockout. */
export function userIpKey(username: string, ip: string): string {
  return `${username}|${ip}`;
}

/** Splits a `username|ip` key at its last `|` (an IP never holds one; a username may). */
export function parseUserIpKey(key: string): { username: string; ip: string } | undefined {
  const at = key.lastIndexOf('|');
  if (at <= 0 || at === key.length - 1) return undefined;
  return { username: key.slice(0, at), ip: key.slice(at + 1) };
}

/** The subject (Kafka key) of a lockout's events: the user, or the source for IP scope. */
export function lockoutSubject(scope: LockoutScope, key: string): string {
  if (scope === 'user_ip') return parseUserIpKey(key)?.username ?? key;
  return key;
}

/**
 * `lockout.imposed` for a lockout. Besides the contract's fields, `data` carries `mode`
 * (a `force_second_factor` user lockout is the soft "second factor on every login" state),
 * `lockId` and `level` (how many locks of this key in a row).
 */
export function lockoutImposedEvent(
  lock: LockoutFacts,
  options: { time: Date; widened?: boolean; source?: string },
): TwofoldEvent<'twofold.lockout.imposed'> {
  // The contract lets events carry more fields than it requires.
  const data = {
    scope: lock.scope,
    key: lock.key,
    until: lock.until,
    failures: lock.failures,
    rule: lock.rule,
    mode: lock.mode,
    lockId: lock.lockId,
    level: lock.level,
    ...(lock.sparesKnownNetworks === undefined ? {} : { sparesKnownNetworks: lock.sparesKnownNetworks }),
  };
  return createEvent(
    'twofold.lockout.imposed',
    options.source ?? LOCKOUT_DETECTOR_SOURCE,
    lockoutSubject(lock.scope, lock.key),
    data,
    {
      id: deterministicEventId('lockout.imposed', lock.lockId, options.widened ? lock.rule : ''),
      time: options.time,
    },
  );
}

/** `lockout.lifted` for a lockout; one id per lockout instance whoever lifts it. */
export function lockoutLiftedEvent(
  lock: Pick<LockoutFacts, 'lockId' | 'scope' | 'key' | 'mode' | 'rule'>,
  by: 'expiry' | 'admin',
  options: { time: Date; source?: string },
): TwofoldEvent<'twofold.lockout.lifted'> {
  const data = {
    scope: lock.scope,
    key: lock.key,
    by,
    rule: lock.rule,
    mode: lock.mode,
    lockId: lock.lockId,
  };
  return createEvent(
    'twofold.lockout.lifted',
    options.source ?? LOCKOUT_DETECTOR_SOURCE,
    lockoutSubject(lock.scope, lock.key),
    data,
    { id: deterministicEventId('lockout.lifted', lock.lockId), time: options.time },
  );
}

export type AttackKind = 'credential_stuffing' | 'password_spraying' | 'brute_force';

/**
 * `attack.detected`. `key` is the source (IP or CIDR) for credential stuffing, the
 * username for brute force (the user is attacked from many sources: the second factor is
 * forced), {@link GLOBAL_SUBJECT} for password spraying. `idParts` make the id stable
 * across redeliveries (the lockout id of the response, when there is one).
 */
export function attackDetectedEvent(
  kind: AttackKind,
  key: string,
  evidence: Record<string, unknown>,
  options: { time: Date; idParts: readonly string[]; source?: string },
): TwofoldEvent<'twofold.attack.detected'> {
  return createEvent(
    'twofold.attack.detected',
    options.source ?? LOCKOUT_DETECTOR_SOURCE,
    key,
    { kind, key, evidence },
    { id: deterministicEventId('attack.detected', kind, ...options.idParts), time: options.time },
  );
}
