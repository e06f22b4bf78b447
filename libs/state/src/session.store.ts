import { MAX_EVENT_TIME_AHEAD_MS } from '@twofold/contracts';
import { taggedKey, type Redis } from '@twofold/redis';
import { defineScripts, type ScriptPipeline } from './scripts.js';

/**
 * Session state: whether an SSO session (by its hash) has passed the second factor.
 *
 * Layout (every key under the caller's prefix):
 * - `session:{<sessionHash>}` — a hash: `state` (`verified` | `revoked`), `username`,
 *   `appId`, `version` (ms of the event that set it), `expiresAtMs`, `eventId`, and on a
 *   tombstone `reason` and `terminal`. Expires with the session; a tombstone lives as long
 *   as any validation it must outrank could still count (see Late verifications).
 * - `user-sessions:{<username>}` — a sorted set of the user's session hashes, scored by
 *   expiry, so a lockout or an admin action can revoke them together.
 * - `user-revoked:{<username>}` — the time (ms) of the user's latest revoke-all, so a
 *   validation older than it is refused even when it arrives after the revoke ran.
 *
 * Ordering: every change carries the time of the event that caused it (see Clocks). A validation only
 * replaces an older state; a revoke wins over a validation of the same or an earlier time;
 * a logout is terminal (the SSO token is dead). Replaying any change, in any order, ends in
 * the same state, so redelivered events never resurrect a revoked session.
 *
 * Clocks: event times come from other processes' clocks, so none is trusted beyond
 * `clockSkewSeconds` ahead of this one. A verification stamped later than that is ignored
 * (outcome `future`: it would stay verified, and outrank every lockout, until its time); a
 * revoke stamped later counts at this clock's now (a logout is a logout, and a verification
 * that really comes after a lockout or an admin revoke counts). Every record thus expires
 * within a bounded time of now, whatever an event says.
 *
 * Late verifications: a verification counts only while younger than both the session
 * lifetime and `maxVerificationAgeSeconds` (a day), and a revoke's record (tombstone,
 * revoke-all time) is kept that long plus the skew, from the revoke's time (at most now). So
 * a lifetime raised after a logout cannot let a verification redelivered later outlive the
 * record that refuses it. The price: a verification reaching the broadcaster more than a day
 * late (an outage, a replay after Redis lost its data) is not restored; the user proves the
 * factor again.
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
  /**
   * applied: state changed; duplicate: this very event was applied before; stale: outranked;
   * expired: too old to matter; future: a verification stamped beyond the allowed clock skew, ignored.
   */
  outcome: 'applied' | 'duplicate' | 'stale' | 'expired' | 'future';
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
  /** How far ahead of this process's clock an event's time is believed (default 5 minutes). */
  clockSkewSeconds?: number;
  /**
   * A verification older than this never counts, whatever the lifetime; revoke records are
   * kept this long plus the skew (default a day). The same on every replica.
   */
  maxVerificationAgeSeconds?: number;
  /** Clock (ms) for tests. */
  now?: number;
}

/** Event times up to this far ahead of the broadcaster's clock are believed. */
export const DEFAULT_SESSION_CLOCK_SKEW_SECONDS = MAX_EVENT_TIME_AHEAD_MS / 1000;
/** The oldest a verification may be and still count (and so how long revoke records live). */
export const DEFAULT_MAX_VERIFICATION_AGE_SECONDS = 86_400;

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
// user watermark (validate), terminal (revoke), the oldest a validation may be (ms), how long
// a revoke's record lives from its time (ms).
// Returns {outcome, announce, username, expiresAtMs, version}.
const APPLY_SESSION_CHANGE = `
local key = KEYS[1]
local kind, eventId = ARGV[1], ARGV[3]
local version, now, ttl = tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5])
local validFor, guard = tonumber(ARGV[10]), tonumber(ARGV[11])
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
  if version + validFor <= now then return {'expired', '0', ARGV[6], fmt(expiresAt), fmt(version)} end
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
  local keep = math.max(math.min(newVersion, now) + guard, curExpires)
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
local keep = math.max(math.min(newVersion, now) + guard, curExpires)
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

// KEYS[1] user-revoked key. ARGV: version, now, how long a revoke's record lives (ms). Keeps
// the latest revoke-all time.
const RAISE_USER_WATERMARK = `
local v = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(ARGV[1]))
local now = tonumber(ARGV[2])
local keep = math.min(v, now) + tonumber(ARGV[3]) - now
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
  const skewMs = Math.round((options.clockSkewSeconds ?? DEFAULT_SESSION_CLOCK_SKEW_SECONDS) * 1000);
  const maxAgeMs = Math.round(
    (options.maxVerificationAgeSeconds ?? DEFAULT_MAX_VERIFICATION_AGE_SECONDS) * 1000,
  );
  // A validation counts while younger than both; a revoke's record outlives any it must refuse.
  const validMs = Math.min(ttlMs, maxAgeMs);
  const guardMs = maxAgeMs + skewMs;
  // Event times beyond the skew are not believed (see the module comment): a validation is
  // ignored, a revoke counts now.
  const future = (change: SessionChange) => change.kind === 'validate' && change.at > now + skewMs;
  const timeOf = (change: SessionChange) => (change.at > now + skewMs ? now : change.at);

  // Round 1. A validation is indexed before it reads the watermark, and a revoke-all raises
  // the watermark before it reads the index: whichever runs first, the other sees it.
  const first = client.pipeline() as SessionPipeline;
  const slots: number[] = [];
  let next = 0;
  for (const change of changes) {
    slots.push(next);
    if (change.kind === 'validate' && !future(change)) {
      first.twofoldSessionIndex(
        userSessionsKey(prefix, change.username),
        change.session,
        change.at + ttlMs,
        now,
      );
      first.get(userRevokedKey(prefix, change.username));
      next += 2;
    } else if (change.kind === 'revoke-user') {
      first.twofoldSessionUserRevoke(userRevokedKey(prefix, change.username), timeOf(change), now, guardMs);
      first.zrangebyscore(userSessionsKey(prefix, change.username), `(${now}`, '+inf');
      next += 2;
    }
  }
  const firstReplies = next > 0 ? results(await first.exec()) : [];

  // Round 2: one script per affected session, in the order of the changes.
  const second = client.pipeline() as SessionPipeline;
  const targets: { change: SessionChange; session: string; future?: true }[] = [];
  const apply = (
    session: string,
    kind: 'validate' | 'revoke',
    change: SessionChange,
    username: string,
    appIdOrReason: string,
    watermark: number,
    terminal: boolean,
  ) => {
    second.twofoldSessionApply(
      sessionKey(prefix, session),
      kind,
      timeOf(change),
      change.eventId,
      now,
      ttlMs,
      username,
      appIdOrReason,
      watermark,
      terminal ? '1' : '0',
      validMs,
      guardMs,
    );
    targets.push({ change, session });
  };
  changes.forEach((change, i) => {
    const slot = slots[i]!;
    if (change.kind === 'validate') {
      if (future(change)) targets.push({ change, session: change.session, future: true });
      else {
        const watermark = Number(firstReplies[slot + 1] ?? 0);
        apply(change.session, 'validate', change, change.username, change.appId, watermark, false);
      }
    } else if (change.kind === 'revoke') {
      const terminal = change.reason === 'logout';
      apply(change.session, 'revoke', change, change.username ?? '', change.reason, 0, terminal);
    } else {
      const sessions = (firstReplies[slot + 1] as string[] | undefined) ?? [];
      for (const session of sessions)
        apply(session, 'revoke', change, change.username, change.reason, 0, false);
    }
  });
  if (targets.length === 0) return [];
  const replies = targets.some((t) => !t.future) ? results(await second.exec()) : [];
  let reply = 0;
  return targets.map(({ change, session, future: ignored }): SessionOutcome => {
    const fallbackUser = 'username' in change ? (change.username ?? '') : '';
    if (ignored) {
      return {
        change,
        session,
        username: fallbackUser,
        outcome: 'future',
        announce: false,
        expiresAtMs: 0,
        version: change.at,
      };
    }
    const [outcome, announce, username, expiresAtMs, version] = replies[reply++] as string[];
    return {
      change,
      session,
      username: username || fallbackUser,
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
