import { normalizeUsername } from '@twofold/contracts';
import { taggedKey } from '@twofold/redis';

/**
 * Key layout of lockout state. Every key of one user shares the hash tag `{u:<username>}`,
 * every key of one network (and its IPs) `{n:<cidr>}`, the global spray figures `{g}`, so
 * each script touches one slot and the layout shards on Redis Cluster.
 *
 * User `<P>lo:{u:<username>}:…`
 * - `streak`, `streakk` — zsets of failure ids (score: event time), all and those from
 *   known-good networks; the ids are the dedupe (ids at or before the reset, and all of an
 *   admin lift, at score 0). `reset` — time of the last completed sign-in (or streak reset,
 *   or admin lift): the consecutive failures are those after it.
 * - `src` — zset: IPs outside known networks that failed for the user (score: latest time).
 * - `pair:<ip>` — zset: failure ids of (user, IP) (score: event time), the backoff window.
 *   Neither holds unknown-user failures (no account): those are in `streak` only.
 * - `known` — zset: known-good networks (score: when the knowledge expires, ms).
 * - `login:<session>` / `done:<session>` — a primary login waiting for its second factor,
 *   or a second factor waiting for its login (whichever arrives first).
 * - `lock`, `force`, `pairlock:<ip>` — lockout records (hash, see {@link LockoutRecord}),
 *   expiring with the lockout; `locklevel`, `pairlevel:<ip>` — locks in a row (backoff).
 * - `until:<lock sub-key>` — end (ms) of the key's last lockout, kept the claim time past
 *   it (gone with an admin lift): a failure at or before it, once that lockout has ended,
 *   was judged while it was in force and calls for no new one.
 * - `liftedat:src`, `liftedat:pair:<ip>` — watermark (ms) of the last admin lift that reset
 *   the window: it counts only failures after it.
 *
 * Network `<P>lo:{n:<cidr>}:…`
 * - `ipusers:<ip>`, `users` — zsets of distinct users of the IP / network (score: latest
 *   time); `iplock:<ip>`, `netlock` — blocks; `iplevel:<ip>`, `netlevel`; `until:iplock:<ip>`,
 *   `until:netlock` — as for a user;
 *   `liftedat:ipusers:<ip>`, `liftedat:users` — watermarks of admin lifts, as for a user.
 *
 * Global `<P>lo:{g}:…` — `b:<bucket>:{e,u,i,p}` HyperLogLogs of failure ids, users, IPs
 * and (user, IP) pairs per time bucket; `c:<window>` failure ids per whole window (baseline).
 *
 * `<P>lo:index` — zset of every lockout record key by expiry (`+inf` when permanent), for
 * the admin list. `lifted:<lockId>` (in the lockout's own slot) records who lifted it.
 */
export const lockoutKeys = {
  user: (prefix: string, username: string) => taggedKey(prefix, 'lo', `u:${normalizeUsername(username)}`),
  network: (prefix: string, network: string) => taggedKey(prefix, 'lo', `n:${network}`),
  global: (prefix: string) => taggedKey(prefix, 'lo', 'g'),
  index: (prefix: string) => `${prefix}lo:index`,
};

/** Which record under which base: the lockout kinds. */
export type LockoutTarget =
  | { readonly kind: 'user'; readonly username: string }
  | { readonly kind: 'force'; readonly username: string }
  | { readonly kind: 'user_ip'; readonly username: string; readonly ip: string }
  | { readonly kind: 'ip'; readonly ip: string; readonly network: string }
  | { readonly kind: 'network'; readonly network: string };

/** Base key, record sub-key and level sub-key ('' when the kind has no backoff) of a target. */
export function lockoutLocation(
  prefix: string,
  target: LockoutTarget,
): { base: string; lockSub: string; levelSub: string } {
  switch (target.kind) {
    case 'user':
      return { base: lockoutKeys.user(prefix, target.username), lockSub: 'lock', levelSub: 'locklevel' };
    case 'force':
      return { base: lockoutKeys.user(prefix, target.username), lockSub: 'force', levelSub: '' };
    case 'user_ip':
      return {
        base: lockoutKeys.user(prefix, target.username),
        lockSub: `pairlock:${target.ip}`,
        levelSub: `pairlevel:${target.ip}`,
      };
    case 'ip':
      return {
        base: lockoutKeys.network(prefix, target.network),
        lockSub: `iplock:${target.ip}`,
        levelSub: `iplevel:${target.ip}`,
      };
    case 'network':
      return { base: lockoutKeys.network(prefix, target.network), lockSub: 'netlock', levelSub: 'netlevel' };
  }
}

/** A lockout as stored (one hash per lockout, expiring with it). */
export interface LockoutRecord {
  /** Stable id of this lockout instance. */
  readonly lockId: string;
  readonly scope: 'user' | 'user_ip' | 'ip';
  /** user: username; user_ip: `username|ip`; ip: an IP or a network in CIDR form. */
  readonly key: string;
  /** `deny` refuses logins; `force_second_factor` (user scope) only removes skips. */
  readonly mode: 'deny' | 'force_second_factor';
  readonly rule: string;
  /** ISO time the lockout ends, or null when permanent. */
  readonly until: string | null;
  readonly imposedAt: string;
  readonly failures: number;
  /** Lockouts of this key in a row (the backoff level); 1 for the first. */
  readonly level: number;
  /** User locks: the user's known-good networks are spared. */
  readonly sparesKnownNetworks?: boolean;
}

/** Field order of a record in script replies (HGETALL-free, fixed positions). */
export const RECORD_FIELDS = [
  'id',
  'scope',
  'key',
  'mode',
  'rule',
  'until',
  'imposedAt',
  'failures',
  'level',
  'spares',
] as const;

/** A record from its fields in {@link RECORD_FIELDS} order (or a field map). */
export function recordFrom(values: readonly (string | null | undefined)[]): LockoutRecord | undefined {
  const [id, scope, key, mode, rule, until, imposedAt, failures, level, spares] = values;
  if (!id || !scope || !key) return undefined;
  return {
    lockId: id,
    scope: scope as LockoutRecord['scope'],
    key,
    mode: (mode || 'deny') as LockoutRecord['mode'],
    rule: rule ?? '',
    until: until ? new Date(Number(until)).toISOString() : null,
    imposedAt: new Date(Number(imposedAt ?? 0)).toISOString(),
    failures: Number(failures ?? 0),
    level: Number(level ?? 1),
    ...(spares === '1' || spares === '0' ? { sparesKnownNetworks: spares === '1' } : {}),
  };
}

export function recordFromHash(hash: Record<string, string>): LockoutRecord | undefined {
  return recordFrom(RECORD_FIELDS.map((f) => hash[f]));
}
