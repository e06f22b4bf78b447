import { taggedKey, type Redis } from '@twofold/redis';
import { defineScripts, type ScriptPipeline } from './scripts.js';

/**
 * Session state: whether an SSO session (by its hash) has passed the second factor.
 *
 * Layout (every key under the caller's prefix):
 * - `session:{<sessionHash>}` — a hash: `state` (`verified` | `revoked`), `username`,
 *   `appId`, `version` (ms of the event that set it), `expiresAtMs`, `eventId`, and on a
 *   tombstone `reason` and `terminal`. Expires with the session (a tombstone lives as long
 *   as any validation it must outrank could).
 * - `user-sessions:{<username>}` — a sorted set of the user's session hashes, scored by
 *   expiry, so a lockout or an admin action can revoke them together.
 * - `user-revoked:{<username>}` — the time (ms) of the user's latest revoke-all, so a
 *   validation older than it is refused even when it arrives after the revoke ran.
 *
 * Ordering: every change carries the time of the event that caused it. A validation only
 * replaces an older state; a revoke wins over a validation of the same or an earlier time;
 * a logout is terminal (the SSO token is dead). Replaying any change, in any order, ends in
 * the same state, so redelivered events never resurrect a revoked session.
 */

/** Why a session was revoked (the `reason` of `twofold.session.revoked`). */
export type SessionRevokeReason = 'logout' | 'lockout' | 'admin';

/** What the api and the verifier read: the answer of `GET /v1/sessions/current`. */
export interface SessionState {
  verified: boolean;
  username?: string;
  /** ISO time the second factor was proven. */
  verifiedAt?: string;
  /** ISO time the verification lapses. */
  expiresAt?: string;
  /** The app where the code was typed. */
  appId?: string;
}

/** A change to apply, derived from one consumed event. `at` is the event's time (ms). */
export type SessionChange =
  | { kind: 'validate'; session: string; username: string; appId: string; at: number; eventId: string }
  | {
      kind: 'revoke';
      session: string;
      reason: SessionRevokeReason;
      at: number;
      eventId: string;
      username?: string;
    }
  | { kind: 'revoke-user'; username: string; reason: 'lockout' | 'admin'; at: number; eventId: string };

/** What one change did to one session. */
export interface SessionOutcome {
  change: SessionChange;
  session: string;
  username: string;
  /** applied: state changed; duplicate: this very event was applied before; stale: outranked; expired: too old to matter. */
  outcome: 'applied' | 'duplicate' | 'stale' | 'expired';
  /** Whether apps must hear it: a new validation, or the revocation of a verified session (also on a duplicate, to re-announce after a crash). */
  announce: boolean;
  /** The verification's (or tombstone's) expiry, ms. */
  expiresAtMs: number;
  /**
   * The time (ms) the session's state now stands at: the validation's time, or for a
   * revoke at least the time of the validation it ended (a logout may carry an earlier clock).
   */
  version: number;
}

export interface SessionApplyOptions {
  /** Lifetime of a verified session. */
  ttlSeconds: number;
  /** Clock (ms) for tests. */
  now?: number;
}

const SESSION_HASH = /^[0-9a-f]{64}$/;

export function sessionKey(prefix: string, sessionHash: string): string {
  return taggedKey(prefix, 'session', sessionHash);
}
export function userSessionsKey(prefix: string, username: string): string {
  return taggedKey(prefix, 'user-sessions', username);
}
export function userRevokedKey(prefix: string, username: string): string {
  return taggedKey(prefix, 'user-revoked', username);
}

/**
 * Reads a session's state. `sessionHash` is the lowercase hex SHA-256 of the SSO token
 * (`hashSessionToken` of `@twofold/contracts`), never the raw token. Answers
 * `{ verified: false }` for unknown, revoked and expired sessions. Throws when Redis cannot
 * answer: callers fail closed (ask for the second factor), they never treat it as verified.
 */
export async function readSession(
  redis: Redis,
  prefix: string,
  sessionHash: string,
  now: number = Date.now(),
): Promise<SessionState> {
  if (!SESSION_HASH.test(sessionHash)) {
    throw new TypeError(
      'readSession takes the session hash (hex SHA-256 of the SSO token), not the raw token',
    );
  }
  const [state, username, appId, version, expiresAtMs] = await redis.hmget(
    sessionKey(prefix, sessionHash),
    'state',
    'username',
    'appId',
    'version',
    'expiresAtMs',
  );
  const expires = Number(expiresAtMs);
  if (state !== 'verified' || !username || !appId || !version || !(expires > now)) return { verified: false };
  return {
    verified: true,
    username,
    verifiedAt: new Date(Number(version)).toISOString(),
    expiresAt: new Date(expires).toISOString(),
    appId,
  };
}

/** The session hashes indexed for a user whose verification (or tombstone) has not expired. */
export async function userSessionHashes(
  redis: Redis,
  prefix: string,
  username: string,
  now: number = Date.now(),
): Promise<string[]> {
  return redis.zrangebyscore(userSessionsKey(prefix, username), `(${now}`, '+inf');
}

// KEYS[1] session key. ARGV: kind, version, eventId, now, ttlMs, username, appId|reason,
// user watermark (validate), terminal (revoke).
// Returns {outcome, announce, username, expiresAtMs, version}.
const APPLY_SESSION_CHANGE = `
local key = KEYS[1]
local kind, eventId = ARGV[1], ARGV[3]
local version, now, ttl = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cur = redis.call('HMGET', key, 'state', 'version', 'eventId', 'terminal', 'announce', 'username', 'expiresAtMs')
local state, curVersion, curEvent = cur[1], tonumber(cur[2]), cur[3]
local terminal, announce = cur[4] == '1', cur[5] or '0'
local curUser, curExpires = cur[6] or '', tonumber(cur[7]) or 0
local function fmt(n) return string.format('%.0f', n) end
if curEvent == eventId then return {'duplicate', announce, curUser, fmt(curExpires), fmt(curVersion)} end
if kind == 'validate' then
  local expiresAt = version + ttl
  if terminal or (curVersion and curVersion >= version) or tonumber(ARGV[8]) >= version then
    return {'stale', '0', curUser, fmt(curExpires), fmt(curVersion or version)}
  end
  if expiresAt <= now then return {'expired', '0', ARGV[6], fmt(expiresAt), fmt(version)} end
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'verified', 'version', fmt(version), 'eventId', eventId, 'username', ARGV[6],
    'appId', ARGV[7], 'expiresAtMs', fmt(expiresAt), 'announce', '1')
  redis.call('PEXPIRE', key, fmt(expiresAt - now))
  return {'applied', '1', ARGV[6], fmt(expiresAt), fmt(version)}
end
local makesTerminal = ARGV[9] == '1'
local username = curUser
if username == '' then username = ARGV[6] end
if state == 'revoked' then
  if curVersion >= version and (terminal or not makesTerminal) then
    return {'stale', '0', username, fmt(curExpires), fmt(curVersion)}
  end
  local newVersion = math.max(curVersion, version)
  local keep = math.max(newVersion + ttl, curExpires)
  local t = '0'
  if terminal or makesTerminal then t = '1' end
  redis.call('HSET', key, 'version', fmt(newVersion), 'expiresAtMs', fmt(keep), 'terminal', t)
  if keep > now then redis.call('PEXPIRE', key, fmt(keep - now)) end
  return {'stale', '0', username, fmt(keep), fmt(newVersion)}
end
if state == 'verified' and curVersion > version and not makesTerminal then
  return {'stale', '0', username, fmt(curExpires), fmt(curVersion)}
end
local newVersion = math.max(curVersion or 0, version)
local keep = math.max(newVersion + ttl, curExpires)
if keep <= now then return {'expired', '0', username, fmt(keep), fmt(newVersion)} end
local wasVerified = '0'
if state == 'verified' then wasVerified = '1' end
local t = '0'
if makesTerminal then t = '1' end
redis.call('DEL', key)
redis.call('HSET', key, 'state', 'revoked', 'version', fmt(newVersion), 'eventId', eventId, 'username', username,
  'reason', ARGV[7], 'terminal', t, 'announce', wasVerified, 'expiresAtMs', fmt(keep))
redis.call('PEXPIRE', key, fmt(keep - now))
return {'applied', wasVerified, username, fmt(keep), fmt(newVersion)}
`;

// KEYS[1] a user's session index. ARGV: session, its end (ms), now. The index lives as long
// as its longest-lived session: a validation under a shorter lifetime (the admin lowered it)
// must not let the index expire before older sessions, which a revoke-all would then miss.
const INDEX_USER_SESSION = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
return 1
`;

// KEYS[1] user-revoked key. ARGV: version, now, ttlMs. Keeps the latest revoke-all time.
const RAISE_USER_WATERMARK = `
local v = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
local keep = v + tonumber(ARGV[3]) - tonumber(ARGV[2])
if keep > 0 then redis.call('SET', KEYS[1], string.format('%.0f', v), 'PX', string.format('%.0f', keep)) end
return string.format('%.0f', v)
`;

const SCRIPTS = {
  twofoldSessionApply: { numberOfKeys: 1, lua: APPLY_SESSION_CHANGE },
  twofoldSessionUserRevoke: { numberOfKeys: 1, lua: RAISE_USER_WATERMARK },
  twofoldSessionIndex: { numberOfKeys: 1, lua: INDEX_USER_SESSION },
} as const;
type SessionPipeline = ScriptPipeline<keyof typeof SCRIPTS>;

type PipelineResult = [Error | null, unknown][] | null;
function results(replies: PipelineResult): unknown[] {
  return (replies ?? []).map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/**
 * Applies changes in order, in two round trips whatever their number: first the user
 * index and revoke-all watermarks, then one script per session. Safe to repeat: applying a
 * change twice, or changes out of order, ends in the same state.
 */
export async function applySessionChanges(
  redis: Redis,
  prefix: string,
  changes: readonly SessionChange[],
  options: SessionApplyOptions,
): Promise<SessionOutcome[]> {
  if (changes.length === 0) return [];
  const client = defineScripts(redis, SCRIPTS);
  const now = options.now ?? Date.now();
  const ttlMs = Math.round(options.ttlSeconds * 1000);

  // Round 1. A validation is indexed before it reads the watermark, and a revoke-all raises
  // the watermark before it reads the index: whichever runs first, the other sees it.
  const first = client.pipeline() as SessionPipeline;
  const slots: number[] = [];
  let next = 0;
  for (const change of changes) {
    slots.push(next);
    if (change.kind === 'validate') {
      first.twofoldSessionIndex(
        userSessionsKey(prefix, change.username),
        change.session,
        change.at + ttlMs,
        now,
      );
      first.get(userRevokedKey(prefix, change.username));
      next += 2;
    } else if (change.kind === 'revoke-user') {
      first.twofoldSessionUserRevoke(userRevokedKey(prefix, change.username), change.at, now, ttlMs);
      first.zrangebyscore(userSessionsKey(prefix, change.username), `(${now}`, '+inf');
      next += 2;
    }
  }
  const firstReplies = next > 0 ? results(await first.exec()) : [];

  // Round 2: one script per affected session, in the order of the changes.
  const second = client.pipeline() as SessionPipeline;
  const targets: { change: SessionChange; session: string }[] = [];
  const apply = second.twofoldSessionApply.bind(second);
  changes.forEach((change, i) => {
    const slot = slots[i]!;
    if (change.kind === 'validate') {
      const watermark = Number(firstReplies[slot + 1] ?? 0);
      apply(
        sessionKey(prefix, change.session),
        'validate',
        change.at,
        change.eventId,
        now,
        ttlMs,
        change.username,
        change.appId,
        watermark,
        '0',
      );
      targets.push({ change, session: change.session });
    } else if (change.kind === 'revoke') {
      apply(
        sessionKey(prefix, change.session),
        'revoke',
        change.at,
        change.eventId,
        now,
        ttlMs,
        change.username ?? '',
        change.reason,
        0,
        change.reason === 'logout' ? '1' : '0',
      );
      targets.push({ change, session: change.session });
    } else {
      const sessions = (firstReplies[slot + 1] as string[] | undefined) ?? [];
      for (const session of sessions) {
        apply(
          sessionKey(prefix, session),
          'revoke',
          change.at,
          change.eventId,
          now,
          ttlMs,
          change.username,
          change.reason,
          0,
          '0',
        );
        targets.push({ change, session });
      }
    }
  });
  if (targets.length === 0) return [];
  const replies = results(await second.exec());
  return targets.map(({ change, session }, i) => {
    const [outcome, announce, username, expiresAtMs, version] = replies[i] as string[];
    return {
      change,
      session,
      username: username || ('username' in change ? (change.username ?? '') : ''),
      outcome: outcome as SessionOutcome['outcome'],
      announce: announce === '1' && (outcome === 'applied' || outcome === 'duplicate'),
      expiresAtMs: Number(expiresAtMs),
      version: Number(version),
    };
  });
}

/** Revokes every live session of a user (lockout, admin action); see applySessionChanges. */
export function revokeUserSessions(
  redis: Redis,
  prefix: string,
  revoke: { username: string; reason: 'lockout' | 'admin'; at: number; eventId: string },
  options: SessionApplyOptions,
): Promise<SessionOutcome[]> {
  return applySessionChanges(redis, prefix, [{ kind: 'revoke-user', ...revoke }], options);
}
