// The login mix of the end-to-end benchmark: what a company's apps publish to
// twofold.login.v1 in a busy hour, plus an attack. Deterministic (seeded), every event with
// a fresh id and the current time.
import { createEvent, hashSessionToken, type AnyTwofoldEvent } from '@twofold/contracts';

export const MIX_APPS = ['jira', 'confluence', 'bitbucket'] as const;

/** Users the benchmark enrolls, and the first `verifiedSessions` of them hold a verified session. */
export const mixUser = (i: number) => `e2e-user-${i}`;
export const mixSessionToken = (i: number) => `e2e-session-${i}`;

export interface MixShape {
  enrolledUsers: number;
  verifiedSessions: number;
}

/** Shares of the mix, in % (they add up to 100). */
export const MIX_SHARES = {
  /** Logins through the IdP: skip/sso. */
  idp: 35,
  /** Local logins in a session already verified in another app: skip/session_verified. */
  verifiedSession: 20,
  /** Local logins in a new session of an enrolled user: challenge. */
  localNew: 10,
  logout: 10,
  /** Real users mistyping their password. */
  typo: 5,
  /** Credential stuffing: many users from many addresses. */
  stuffing: 15,
  /** Brute force: a few targets from a few addresses. */
  bruteForce: 5,
} as const;

export function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function loginMix(shape: MixShape, seed: number) {
  const next = random(seed);
  const pick = (n: number) => Math.floor(next() * n);
  const app = () => MIX_APPS[pick(MIX_APPS.length)]!;
  const officeIp = () => `203.0.113.${1 + pick(250)}`;
  const session = () => hashSessionToken(`${seed}-${next()}-${next()}`);
  const cut = (() => {
    let acc = 0;
    return Object.fromEntries(Object.entries(MIX_SHARES).map(([k, v]) => [k, (acc += v)])) as Record<
      keyof typeof MIX_SHARES,
      number
    >;
  })();
  return (): AnyTwofoldEvent => {
    const roll = next() * 100;
    const appId = app();
    const source = `app/${appId}`;
    if (roll < cut.idp)
      return createEvent('twofold.login.succeeded', source, `idp-user-${pick(50_000)}`, {
        appId,
        session: session(),
        method: 'sso',
        idp: 'okta',
        amr: ['pwd', 'mfa'],
        ip: officeIp(),
      });
    if (roll < cut.verifiedSession) {
      const i = pick(shape.verifiedSessions);
      return createEvent('twofold.login.succeeded', source, mixUser(i), {
        appId,
        session: hashSessionToken(mixSessionToken(i)),
        method: 'password',
        ip: officeIp(),
      });
    }
    if (roll < cut.localNew)
      return createEvent('twofold.login.succeeded', source, mixUser(pick(shape.enrolledUsers)), {
        appId,
        session: session(),
        method: 'password',
        ip: officeIp(),
      });
    if (roll < cut.logout)
      return createEvent('twofold.logout', source, mixUser(pick(shape.enrolledUsers)), {
        appId,
        session: session(),
      });
    if (roll < cut.typo)
      return createEvent('twofold.login.failed', source, mixUser(pick(shape.enrolledUsers)), {
        appId,
        ip: officeIp(),
        reason: 'bad_password',
      });
    if (roll < cut.stuffing) {
      const ip = pick(20_000);
      return createEvent('twofold.login.failed', source, `user-${pick(100_000)}`, {
        appId,
        ip: `10.${ip >> 8}.${ip & 255}.${1 + pick(250)}`,
        reason: pick(3) === 0 ? 'unknown_user' : 'bad_password',
      });
    }
    return createEvent('twofold.login.failed', source, `target-${pick(50)}`, {
      appId,
      ip: `192.0.2.${1 + pick(20)}`,
      reason: 'bad_password',
    });
  };
}

/** Mean size (bytes) of a mix event on the wire, for the Kafka baseline. */
export function meanEventBytes(samples = 2_000): number {
  const next = loginMix({ enrolledUsers: 5_000, verifiedSessions: 1_000 }, 7);
  let bytes = 0;
  for (let i = 0; i < samples; i++) bytes += Buffer.byteLength(JSON.stringify(next()));
  return Math.round(bytes / samples);
}
