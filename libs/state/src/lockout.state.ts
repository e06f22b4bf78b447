import { normalizeUsername } from '@twofold/contracts';
import type { Redis } from '@twofold/redis';
import {
  RECORD_FIELDS,
  lockoutKeys,
  lockoutLocation,
  recordFrom,
  type LockoutRecord,
  type LockoutTarget,
} from './lockout-keys.js';
import { lockoutSourceOf } from './lockout-network.js';
import { LOCKOUT_ADMIN_LIFT_SCRIPT } from './lockout.scripts.js';
import { runScript } from './scripts.js';

// The read side of lockout state (verifier, api) and the admin list and lift.

/** A lockout in force: until an ISO time, or permanently (`until: null`). Same shape as `Lock` of @twofold/policy. */
export interface LockoutLock {
  readonly until: string | null;
}

/** What lockout state says about one login (user, IP). */
export interface LockState {
  /** The user's hard lock (the NIST bound), unless it spares this IP's network because the user signs in from it. */
  readonly userLock: LockoutLock | null;
  /**
   * The most severe lock of this user from this IP: the (user, IP) backoff, a block of the
   * IP or of its network (credential stuffing). None applies on the user's known-good networks.
   */
  readonly userIpLock: LockoutLock | null;
  /** The user is attacked from many sources: always ask for the second factor (no skips). */
  readonly forceSecondFactor: boolean;
  /** The IP's network is one the user completed a sign-in from recently. */
  readonly knownNetwork: boolean;
  /** The lockouts that apply, for logs and answers. */
  readonly applied: readonly LockoutRecord[];
}

const LOCK_FIELDS = [...RECORD_FIELDS];

function moreSevere(a: LockoutLock | null, b: LockoutLock | null): LockoutLock | null {
  if (!a) return b;
  if (!b) return a;
  if (a.until === null) return a;
  if (b.until === null) return b;
  return Date.parse(a.until) >= Date.parse(b.until) ? a : b;
}

/**
 * Lock state of many logins in one round trip (the verifier decides in batches). Usernames
 * are normalized here; an IP that does not parse throws a TypeError (callers validate
 * input first). Redis errors throw: callers fail closed (`challenge/state_unavailable` in
 * the verifier, 503 in the api), they never read an error as "not locked".
 *
 * A lockout record lives exactly as long as the lockout (Redis expiry), so no clock is
 * compared here; `now` only decides whether a known-good network is still known.
 */
export async function readLockStates(
  redis: Redis,
  prefix: string,
  logins: readonly { username: string; ip: string }[],
  now: number = Date.now(),
): Promise<LockState[]> {
  if (logins.length === 0) return [];
  const pipeline = redis.pipeline();
  const located = logins.map(({ username, ip }) => {
    const source = lockoutSourceOf(ip);
    if (!source) throw new TypeError(`"${ip}" is not an IP address`);
    const user = lockoutKeys.user(prefix, normalizeUsername(username));
    const network = lockoutKeys.network(prefix, source.network);
    pipeline.hmget(`${user}:lock`, ...LOCK_FIELDS);
    pipeline.hmget(`${user}:force`, ...LOCK_FIELDS);
    pipeline.hmget(`${user}:pairlock:${source.ip}`, ...LOCK_FIELDS);
    pipeline.zscore(`${user}:known`, source.network);
    pipeline.hmget(`${network}:iplock:${source.ip}`, ...LOCK_FIELDS);
    pipeline.hmget(`${network}:netlock`, ...LOCK_FIELDS);
    return source;
  });
  const results = (await pipeline.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
  return located.map((_, i) => {
    const at = (k: number) => results[i * 6 + k]![1];
    const record = (k: number) => recordFrom(at(k) as (string | null)[]);
    const [user, force, pair, ipBlock, networkBlock] = [
      record(0),
      record(1),
      record(2),
      record(4),
      record(5),
    ];
    const knownUntil = at(3) as string | null;
    const knownNetwork = knownUntil !== null && Number(knownUntil) > now;
    const applied: LockoutRecord[] = [];
    let userLock: LockoutLock | null = null;
    if (user && !(knownNetwork && user.sparesKnownNetworks === true)) {
      userLock = { until: user.until };
      applied.push(user);
    }
    let userIpLock: LockoutLock | null = null;
    if (!knownNetwork) {
      for (const lock of [pair, ipBlock, networkBlock]) {
        if (!lock) continue;
        userIpLock = moreSevere(userIpLock, { until: lock.until });
        applied.push(lock);
      }
    }
    if (force) applied.push(force);
    return { userLock, userIpLock, forceSecondFactor: force !== undefined, knownNetwork, applied };
  });
}

/** Lock state of one login; see {@link readLockStates}. */
export async function readLockState(
  redis: Redis,
  prefix: string,
  username: string,
  ip: string,
  now: number = Date.now(),
): Promise<LockState> {
  const [state] = await readLockStates(redis, prefix, [{ username, ip }], now);
  return state!;
}

/** Why a list cursor was refused. */
export class LockoutCursorError extends Error {
  readonly code = 'TWOFOLD_LOCKOUT_CURSOR_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'LockoutCursorError';
  }
}

/**
 * One page of the index after a position (score, member), in one atomic step: the index
 * sorts by score, then by member (bytes), and the page starts strictly after that pair,
 * whether or not its entry is still there. KEYS[1]: the index. ARGV: limit, then score and
 * member of the position (none for the first page). Replies members and scores.
 */
const LOCKOUT_LIST_PAGE_SCRIPT = `
local index, limit = KEYS[1], tonumber(ARGV[1])
local start = 0
if ARGV[3] then
  local score, member = ARGV[2], ARGV[3]
  local held = redis.call('ZSCORE', index, member)
  if held and tonumber(held) == tonumber(score) then
    start = redis.call('ZRANK', index, member) + 1
  else
    -- The entry ended, was lifted or now holds a newer lockout: put it at the position for
    -- a moment to learn how many entries sort before it, then restore it.
    redis.call('ZADD', index, score, member)
    start = redis.call('ZRANK', index, member)
    if held then
      redis.call('ZADD', index, held, member)
      if tonumber(held) < tonumber(score) then start = start + 1 end
    else
      redis.call('ZREM', index, member)
    end
  end
end
return redis.call('ZRANGE', index, start, start + limit - 1, 'WITHSCORES')
`;

const CURSOR_SCORE = /^(?:inf|[0-9]{1,16})$/;

function encodeCursor(score: string, member: string): string {
  return Buffer.from(JSON.stringify([score, member])).toString('base64url');
}

function decodeCursor(cursor: string, index: string): [score: string, member: string] {
  let position: unknown;
  try {
    position = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    position = undefined;
  }
  const memberPrefix = index.slice(0, -'index'.length);
  if (
    !Array.isArray(position) ||
    position.length !== 2 ||
    typeof position[0] !== 'string' ||
    typeof position[1] !== 'string' ||
    !CURSOR_SCORE.test(position[0]) ||
    !position[1].startsWith(memberPrefix)
  ) {
    throw new LockoutCursorError(
      'the cursor is not a nextCursor of this list (cursors of an earlier version are no longer ' +
        'accepted); start again from the first page, without a cursor',
    );
  }
  return [position[0], position[1]];
}

/**
 * Lockouts in force, soonest to end first (permanent ones last), `limit` at a time
 * (default 100, at most 1000); pass `nextCursor` back for the next page. The cursor holds
 * the position (end time and key of the last entry), not an offset: lockouts that end or
 * are lifted between pages do not shift the next page. Throws {@link LockoutCursorError}
 * for a cursor this function did not issue.
 */
export async function listLockouts(
  redis: Redis,
  prefix: string,
  options: { limit?: number; cursor?: string; now?: number } = {},
): Promise<{ lockouts: LockoutRecord[]; nextCursor?: string }> {
  const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
  const now = options.now ?? Date.now();
  const index = lockoutKeys.index(prefix);
  const after = options.cursor ? decodeCursor(options.cursor, index) : [];
  await redis.zremrangebyscore(index, '-inf', `(${now}`);
  const page = (await runScript(
    redis,
    'twofoldLockoutListPage',
    LOCKOUT_LIST_PAGE_SCRIPT,
    [index],
    [limit, ...after],
  )) as string[];
  const keys = page.filter((_, i) => i % 2 === 0);
  if (keys.length === 0) return { lockouts: [] };
  const pipeline = redis.pipeline();
  for (const key of keys) pipeline.hmget(key, ...LOCK_FIELDS);
  const results = (await pipeline.exec()) ?? [];
  const lockouts: LockoutRecord[] = [];
  const gone: string[] = [];
  results.forEach(([err, values], i) => {
    if (err) throw err;
    const record = recordFrom(values as (string | null)[]);
    if (record) lockouts.push(record);
    else gone.push(keys[i]!);
  });
  if (gone.length > 0) await redis.zrem(index, ...gone);
  return {
    lockouts,
    ...(keys.length === limit ? { nextCursor: encodeCursor(page.at(-1)!, keys.at(-1)!) } : {}),
  };
}

/** Why an admin lift could not name what to lift. */
export class LockoutKeyError extends Error {
  readonly code = 'TWOFOLD_LOCKOUT_KEY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'LockoutKeyError';
  }
}

interface LiftOfBase {
  locks: string[];
  clear: string[];
  dedupe: string[];
  marks: string[];
}

/** Base keys of a lift: the lock, evidence, dedupe and watermark sub-keys under each. */
function liftBases(prefix: string, scope: LockoutRecord['scope'], key: string): Map<string, LiftOfBase> {
  const bases = new Map<string, LiftOfBase>();
  for (const { target, clear, dedupe = [], marks } of liftPlan(scope, key)) {
    const { base, lockSub } = lockoutLocation(prefix, target);
    const entry = bases.get(base) ?? { locks: [], clear: [], dedupe: [], marks: [] };
    entry.locks.push(lockSub);
    entry.clear.push(...clear);
    entry.dedupe.push(...dedupe);
    entry.marks.push(...marks);
    bases.set(base, entry);
  }
  return bases;
}

/** How long a lift's watermark is kept by default: the default streak memory, the longest window. */
export const LIFT_WATERMARK_TTL_MS = 30 * 86_400_000;

/**
 * The lockouts an admin lift of this scope and key would lift now, without lifting them
 * (what to announce before {@link liftLockout}). Throws {@link LockoutKeyError} for a
 * malformed key.
 */
export async function lockoutsToLift(
  redis: Redis,
  prefix: string,
  scope: LockoutRecord['scope'],
  key: string,
): Promise<LockoutRecord[]> {
  const pipeline = redis.pipeline();
  for (const [base, { locks }] of liftBases(prefix, scope, key))
    for (const sub of locks) pipeline.hmget(`${base}:${sub}`, ...LOCK_FIELDS);
  const results = (await pipeline.exec()) ?? [];
  const records: LockoutRecord[] = [];
  for (const [err, values] of results) {
    if (err) throw err;
    const record = recordFrom(values as (string | null)[]);
    if (record) records.push(record);
  }
  return records;
}

/**
 * Lifts the lockouts of one scope and key (an admin unlock) and forgets their evidence,
 * so the next failure does not re-impose at once:
 *
 * - `user`, key = username: the hard lock and the "force a second factor" state; the
 *   consecutive-failure streak and the user's failing sources are reset.
 * - `user_ip`, key = `username|ip`: the (user, IP) backoff lock; its window is reset.
 * - `ip`, key = an IP: the block of that IP; key = a network (`203.0.113.0/24`,
 *   `2001:db8::/64`): the block of the network. Their windows are reset.
 *
 * A reset is a fresh start: failures with an event time at or before the lift were judged
 * already, and a redelivery of them (the detector counted them, then crashed before its
 * commit) counts them nowhere again. The lift leaves a watermark per window reset, at the
 * lift's time (`now`), or at the latest event time in the window when that is later; it
 * is kept `watermarkTtlMs` (default {@link LIFT_WATERMARK_TTL_MS}; at least the longest
 * counting window). Failures from an app whose clock runs behind, up to its lag after the
 * lift, are not counted either. The streak's failure ids stay (uncounted) as the dedupe: a
 * redelivery is still read as one, and may announce again what it imposed elsewhere.
 *
 * With `lockIds`, only lockouts with those ids are lifted (those announced already: a
 * lockout imposed since is left in force). Returns the records lifted (empty when nothing
 * was in force); publishing `lockout.lifted` (by admin) is the caller's part. A lockout
 * lifted here is never announced as lifted by expiry. Throws {@link LockoutKeyError} for
 * a malformed key.
 */
export async function liftLockout(
  redis: Redis,
  prefix: string,
  scope: LockoutRecord['scope'],
  key: string,
  options: {
    claimTtlMs?: number;
    lockIds?: readonly string[];
    /** The lift's time (ms); now by default. */
    now?: number;
    watermarkTtlMs?: number;
  } = {},
): Promise<LockoutRecord[]> {
  const bases = liftBases(prefix, scope, key);
  const only = options.lockIds ? ['only', ...options.lockIds] : [];
  const now = options.now ?? Date.now();
  const lifted: LockoutRecord[] = [];
  const unindexed: string[] = [];
  for (const [base, { locks, clear, dedupe, marks }] of bases) {
    const reply = (await runScript(
      redis,
      'twofoldLockoutAdminLift',
      LOCKOUT_ADMIN_LIFT_SCRIPT,
      [base],
      [
        options.claimTtlMs ?? 7 * 86_400_000,
        now,
        options.watermarkTtlMs ?? LIFT_WATERMARK_TTL_MS,
        locks.length,
        ...locks,
        clear.length,
        ...clear,
        dedupe.length,
        ...dedupe,
        marks.length,
        ...marks,
        ...only,
      ],
    )) as string[][];
    for (const fields of reply) {
      const record = recordFrom(fields);
      if (!record) continue;
      lifted.push(record);
      unindexed.push(`${base}:${fields[RECORD_FIELDS.length]!}`);
    }
  }
  if (unindexed.length > 0) await redis.zrem(lockoutKeys.index(prefix), ...unindexed);
  return lifted;
}

/**
 * What a lift touches per target: the lock, the windows it forgets (`clear`; `dedupe`: the
 * streak, whose ids are the dedupe of failures, forgotten as evidence but kept as ids) and
 * the watermarks it leaves (`marks`, read by the counting scripts: `reset` for the streak,
 * `liftedat:<window>` for the others).
 */
function liftPlan(
  scope: string,
  key: string,
): { target: LockoutTarget; clear: string[]; dedupe?: string[]; marks: string[] }[] {
  if (scope === 'user') {
    const username = normalizeUsername(key);
    if (!username) throw new LockoutKeyError('the key of a user lockout is a username');
    return [
      {
        target: { kind: 'user', username },
        clear: ['streakk', 'src'],
        dedupe: ['streak'],
        marks: ['reset', 'liftedat:src'],
      },
      { target: { kind: 'force', username }, clear: [], marks: [] },
    ];
  }
  if (scope === 'user_ip') {
    const at = key.lastIndexOf('|');
    const username = normalizeUsername(key.slice(0, Math.max(at, 0)));
    const source = at > 0 ? lockoutSourceOf(key.slice(at + 1)) : undefined;
    if (!username || !source)
      throw new LockoutKeyError('the key of a user_ip lockout is "username|ip", e.g. "alice|203.0.113.7"');
    return [
      {
        target: { kind: 'user_ip', username, ip: source.ip },
        clear: [`pair:${source.ip}`],
        marks: [`liftedat:pair:${source.ip}`],
      },
    ];
  }
  if (scope === 'ip') {
    const slash = key.indexOf('/');
    const source = lockoutSourceOf(slash >= 0 ? key.slice(0, slash) : key);
    if (!source)
      throw new LockoutKeyError(
        'the key of an ip lockout is an IP address or a network such as 203.0.113.0/24',
      );
    if (slash >= 0) {
      if (key.slice(slash) !== source.network.slice(source.network.indexOf('/')))
        throw new LockoutKeyError(`networks are IPv4 /24 and IPv6 /64: ${source.network}`);
      return [
        { target: { kind: 'network', network: source.network }, clear: ['users'], marks: ['liftedat:users'] },
      ];
    }
    return [
      {
        target: { kind: 'ip', ip: source.ip, network: source.network },
        clear: [`ipusers:${source.ip}`],
        marks: [`liftedat:ipusers:${source.ip}`],
      },
    ];
  }
  throw new LockoutKeyError(`unknown scope "${scope}" (user, user_ip, ip)`);
}
