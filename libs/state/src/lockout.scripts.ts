// Lua scripts of lockout state (key layout in lockout-keys.ts). Each takes one or more
// base keys in KEYS; the keys it touches are the base plus a suffix, so they share the
// base's hash tag (one slot per base). Several bases go in one call only on a single
// Redis; on a cluster the caller sends one base per call.
//
// Windows are sliding logs: a zset per window scored by event time (ms); an entry counts
// for an event at time t when its score is > t - window (an entry exactly one window old
// no longer counts). Trimming keeps memory bounded and never changes a count that matters.

const WINDOW_HELPERS = `
-- Times are integral ms below 1e14, which Lua prints in full ("%.14g"): plain
-- concatenation, not string.format, builds score bounds (it runs several times per event).
local function since(t, window) return '(' .. (t - window) end
-- One event in 16 (by the last byte of its id) trims the keys it touched: memory stays
-- bounded without trimming on every write; a count past the cap trims at once.
local function sampled(id) return string.byte(id, -1) % 16 == 0 end
-- keep: never shorten an expiry set before (PEXPIRE GT would read a key this call just
-- created, which has none yet, as lasting forever and leave it so).
local function expire(key, ttl, keep)
  if keep then
    local left = redis.call('PTTL', key)
    if left == -2 or left >= ttl then return end
  end
  redis.call('PEXPIRE', key, ttl)
end
-- floor: the lowest score trimmed ('-inf' unless given; the streak spares its score-0 entries).
local function trim(key, before, cap, ttl, keep, floor)
  redis.call('ZREMRANGEBYSCORE', key, floor or '-inf', before)
  if cap > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
  expire(key, ttl, keep)
end
-- Watermarks, read at most once per call (no counting script writes one).
local marks = {}
local function markOf(key)
  local value = marks[key]
  if value == nil then
    value = tonumber(redis.call('GET', key)) or false
    marks[key] = value
  end
  return value
end
-- An admin lift leaves a watermark per window it cleared (\`liftedat:<window>\`): the failures
-- at or before it were judged already (a redelivery brings them again and re-adds them), so
-- a window counts only failures after it. Read only once a count reaches its gate with no
-- lockout of the window in force (below the gate no rule looks at the count; with the
-- lockout in force the rule is answered already), once per call.
local function afterLift(window, count, t, length, mark)
  local from = markOf(mark)
  if not from or t - length >= from then return count end
  if t <= from then return 0 end
  return redis.call('ZCOUNT', window, '(' .. from, '+inf')
end
`;

/**
 * Counts user-side signals. Per base (one user): n events of 6 fields `kind` (f = failure,
 * u = failure for a username the app has no account for, s = primary login succeeded,
 * c = sign-in complete, r = streak reset only), `id`, `t`, `ip`, `network`, `session`.
 * ARGV head: now, pairWindow, srcWindow, windowCap, streakTtl, streakCap, pendingTtl,
 * knownMax, knownTtl, streakGate, sourcesGate, pairGate. Lock flags and the known-network
 * streak are read only once their count reaches its gate (the rule's threshold): below
 * it they reply 0, which no rule looks at.
 *
 * Every structure is idempotent, so a redelivered event changes nothing: the streak is a
 * zset of failure ids (the dedupe: ZADD NX tells a new failure from one seen before),
 * counted after `reset`, the time of the last completed sign-in or admin lift (a failure
 * from before it, read late or again, does not count: it is kept at score 0, which no
 * trim by time removes, and an admin lift keeps the streak's ids at score 0); the (user,
 * IP) log is keyed by failure id; sources and known networks keep the latest time per
 * member. The (user, IP) and sources windows count after the watermark of an admin lift
 * (`afterLift`).
 *
 * A `u` failure has no account behind it: no (user, IP) lock and no many-sources lock
 * protects anything, so it is only added to the streak (the dedupe, and the hard lock if
 * the app mislabels a real account's failure), not to the (user, IP) or sources windows
 * (it replies 0 for both); the source side counts it like any failure. A user whose
 * failures in a call are all `u` keeps its streak only as long as the longest short window
 * (pair, sources), not the streak memory, or a combo list of random names would fill Redis
 * (without eviction, it would then refuse every write). An expiry a real failure set
 * before is never shortened. The dedupe of such failures lasts as long as their streak: a
 * redelivery later than that counts again on the user side only (the source and spray
 * figures are idempotent on their own), for a username with no account.
 *
 * A failure replies {duplicate, known, streak, streakKnown, pairFailures, sources,
 * userLock (0 none, 1 spares known networks, 2 every network), force, pairLock}; other
 * signals reply {0}.
 */
export const LOCKOUT_USER_COUNT_SCRIPT = `${WINDOW_HELPERS}
local function promote(known, network, now, knownTtl, knownMax)
  redis.call('ZADD', known, now + knownTtl, network)
  redis.call('ZREMRANGEBYSCORE', known, '-inf', now)
  redis.call('ZREMRANGEBYRANK', known, 0, -(knownMax + 1))
  redis.call('PEXPIRE', known, knownTtl)
end
local now = tonumber(ARGV[1])
local pairWindow, srcWindow, windowCap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local streakTtl, streakCap, pendingTtl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local knownMax, knownTtl = tonumber(ARGV[8]), tonumber(ARGV[9])
local streakGate, sourcesGate, pairGate = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local a = 13
local out = {}
for g = 1, #KEYS do
  local base = KEYS[g]
  local streak, streakKnown, known, src = base .. ':streak', base .. ':streakk', base .. ':known', base .. ':src'
  local resetAt = tonumber(redis.call('GET', base .. ':reset') or '0')
  local afterReset = '(' .. resetAt
  local pairPrefix = base .. ':pair:'
  local n = tonumber(ARGV[a]); a = a + 1
  -- Failures of a real account keep the streak memory; unknown-user ones the longest short window.
  local userTtl, keep = math.min(streakTtl, math.max(pairWindow, srcWindow)), true
  for i = 0, n - 1 do
    if ARGV[a + 6 * i] == 'f' then userTtl, keep = streakTtl, false; break end
  end
  local replies, pairsTouched = {}, {}
  local failed, knownTouched, srcTouched = false, false, false
  for i = 1, n do
    -- ts: the time as sent, handed to ZADD as is (no number-to-string conversion per call).
    local kind, id, ts = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    local t = tonumber(ts)
    local ip, network, session = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
    a = a + 6
    if kind == 'f' or kind == 'u' then
      failed = true
      -- A failure at or before the reset (read late, or again after an admin lift) is kept
      -- for the dedupe only, at score 0: no count includes it, even once the reset is gone.
      local inStreak = t > resetAt
      local fresh = redis.call('ZADD', streak, 'NX', inStreak and ts or 0, id) == 1
      local ks = redis.call('ZSCORE', known, network)
      local isKnown = ks and tonumber(ks) > now
      local pair = pairPrefix .. ip
      -- An unknown-user failure stays out of the (user, IP) and sources windows: no
      -- account, no lock of theirs to impose (it replies 0 for both).
      local real = kind == 'f'
      local pairCount, sources = 0, 0
      if isKnown then
        if fresh and inStreak then redis.call('ZADD', streakKnown, 'NX', ts, id); knownTouched = true end
      elseif real then
        redis.call('ZADD', pair, ts, id)
        redis.call('ZADD', src, 'GT', ts, ip)
        pairsTouched[pair] = true
        srcTouched = true
        pairCount = redis.call('ZCOUNT', pair, since(t, pairWindow), '+inf')
      end
      local total = redis.call('ZCOUNT', streak, afterReset, '+inf')
      if real then sources = redis.call('ZCOUNT', src, since(t, srcWindow), '+inf') end
      if sampled(id) or total > streakCap then
        -- Score-0 entries (failures at or before the reset, kept for the dedupe) stay.
        trim(streak, resetAt, streakCap, userTtl, keep, '(0')
        -- Known-network failures are a subset of the streak: bounded by the same rule.
        trim(streakKnown, resetAt, streakCap, userTtl, keep)
      end
      if real and (sampled(id) or pairCount > windowCap) and not isKnown then trim(pair, t - pairWindow, windowCap, pairWindow) end
      if real and (sampled(id) or sources > windowCap) then trim(src, t - srcWindow, windowCap, srcWindow) end
      -- What only matters past a threshold is read only there (most failures are below).
      local userLock, streakKnownCount, force, pairLock = 0, 0, 0, 0
      if total >= streakGate then
        local lock = redis.call('HMGET', base .. ':lock', 'id', 'spares')
        if lock[1] then userLock = (lock[2] == '1') and 1 or 2 end
        streakKnownCount = redis.call('ZCOUNT', streakKnown, afterReset, '+inf')
      end
      if sources >= sourcesGate then
        force = redis.call('EXISTS', base .. ':force')
        if force == 0 then sources = afterLift(src, sources, t, srcWindow, base .. ':liftedat:src') end
      end
      if pairCount >= pairGate then
        pairLock = redis.call('EXISTS', base .. ':pairlock:' .. ip)
        if pairLock == 0 then pairCount = afterLift(pair, pairCount, t, pairWindow, base .. ':liftedat:pair:' .. ip) end
      end
      replies[i] = {
        fresh and 0 or 1, isKnown and 1 or 0, total, streakKnownCount, pairCount, sources, userLock, force, pairLock
      }
    elseif kind == 's' then
      redis.call('SET', base .. ':login:' .. session, network, 'PX', pendingTtl)
      if redis.call('EXISTS', base .. ':done:' .. session) == 1 then promote(known, network, now, knownTtl, knownMax) end
      replies[i] = { 0 }
    else
      if t > resetAt then
        resetAt = t
        afterReset = '(' .. resetAt
        redis.call('SET', base .. ':reset', resetAt, 'PX', streakTtl)
        -- The reset expires before failures after it do: what it excludes goes now, or it
        -- would count again once the reset is gone.
        redis.call('ZREMRANGEBYSCORE', streak, '-inf', resetAt)
        redis.call('ZREMRANGEBYSCORE', streakKnown, '-inf', resetAt)
      end
      -- A reset alone (r) passed no second factor: its network does not become known-good.
      if kind == 'c' then
        local network = redis.call('GET', base .. ':login:' .. session)
        if network then
          promote(known, network, now, knownTtl, knownMax)
        else
          redis.call('SET', base .. ':done:' .. session, '1', 'PX', pendingTtl)
        end
      end
      replies[i] = { 0 }
    end
  end
  if failed then
    expire(streak, userTtl, keep)
    if knownTouched then expire(streakKnown, userTtl, keep) end
    if srcTouched then redis.call('PEXPIRE', src, srcWindow) end
    for pair in pairs(pairsTouched) do redis.call('PEXPIRE', pair, pairWindow) end
  end
  out[g] = replies
end
return out
`;

/**
 * Counts failures per source network. Per base (one network): n failures of 4 fields
 * `id`, `t`, `ip`, `username`. ARGV head: now, window, windowCap, ipGate, netGate (blocks
 * are read only once a count reaches its gate). Distinct users keep the
 * latest time per user, so a redelivered failure changes nothing; past the gate, a window
 * counts after the watermark of an admin lift (`afterLift`). Replies per failure
 * {ipUsers, networkUsers, ipBlock, networkBlock}.
 */
export const LOCKOUT_NETWORK_COUNT_SCRIPT = `${WINDOW_HELPERS}
local now = tonumber(ARGV[1])
local window, windowCap = tonumber(ARGV[2]), tonumber(ARGV[3])
local ipGate, netGate = tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
local out = {}
for g = 1, #KEYS do
  local base = KEYS[g]
  local users, netLock = base .. ':users', base .. ':netlock'
  local ipUsersPrefix, ipLockPrefix = base .. ':ipusers:', base .. ':iplock:'
  local n = tonumber(ARGV[a]); a = a + 1
  local replies, touched = {}, {}
  for i = 1, n do
    local id, ts, ip, user = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
    local t = tonumber(ts)
    a = a + 4
    local ipUsers = ipUsersPrefix .. ip
    redis.call('ZADD', ipUsers, 'GT', ts, user)
    redis.call('ZADD', users, 'GT', ts, user)
    touched[ipUsers] = true
    local from = since(t, window)
    local ipCount, netCount = redis.call('ZCOUNT', ipUsers, from, '+inf'), redis.call('ZCOUNT', users, from, '+inf')
    if sampled(id) or ipCount > windowCap then trim(ipUsers, t - window, windowCap, window) end
    if sampled(id) or netCount > windowCap then trim(users, t - window, windowCap, window) end
    local ipBlock, netBlock = 0, 0
    if ipCount >= ipGate then
      ipBlock = redis.call('EXISTS', ipLockPrefix .. ip)
      if ipBlock == 0 then ipCount = afterLift(ipUsers, ipCount, t, window, base .. ':liftedat:ipusers:' .. ip) end
    end
    if netCount >= netGate then
      netBlock = redis.call('EXISTS', netLock)
      if netBlock == 0 then netCount = afterLift(users, netCount, t, window, base .. ':liftedat:users') end
    end
    replies[i] = { ipCount, netCount, ipBlock, netBlock }
  end
  redis.call('PEXPIRE', users, window)
  for key in pairs(touched) do redis.call('PEXPIRE', key, window) end
  out[g] = replies
end
return out
`;

/**
 * Imposes lockouts if absent. Per base: n impositions of 14 fields `lockSub`, `levelSub`,
 * `lockId`, `scope`, `key`, `mode`, `rule`, `failures`, `spares`, `levelMemory`,
 * `permanentAfter`, `schedule` (comma-separated durations by level, ms), `widen`, `causeAt`
 * (event time of the cause, ms; '' not to check it). ARGV head: now, claimTtl.
 *
 * A lockout with an end leaves it in `until:<lockSub>` (never lowered), kept claimTtl past
 * it. `causeAt` is given for a redelivered cause only (one the counting script knew): with
 * no lockout of the key in force, one at or before that end was judged while the last one
 * was in force, and is skipped as it was then. A failure never seen before is judged now,
 * whatever its time says: skipping it by time would give an app whose clock runs behind (or
 * a detector lagging) lockout-free guesses after every lockout. An admin lift deletes the
 * mark with the lockout.
 *
 * Replies per imposition {status, ...record fields, widenedAt} where status is `imposed`
 * (new), `existing` (this very lockout, imposed before: announce again, with the fields it
 * was imposed with even if widened since), `widened` (a user
 * lock that spared known networks now covers every network; again for the cause that widened
 * it, to announce again), or `skipped` with no fields (another lockout is in force, this
 * one was lifted already, or the cause is covered by the key's last lockout).
 */
export const LOCKOUT_IMPOSE_SCRIPT = `
local now, claimTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
local FIELDS = { 'id', 'scope', 'key', 'mode', 'rule', 'until', 'imposedAt', 'failures', 'level', 'spares' }
local function reply(status, lockKey, asImposed)
  local r = { status }
  local values = redis.call('HMGET', lockKey, unpack(FIELDS))
  for i = 1, #FIELDS do r[i + 1] = values[i] or '' end
  local widening = redis.call('HMGET', lockKey, 'widenedAt', 'imposedRule', 'imposedFailures')
  r[#FIELDS + 2] = widening[1] or ''
  -- Announced again as imposed: as it was imposed, before a widening changed it (rule is
  -- FIELDS[5], failures FIELDS[8], spares FIELDS[10]; a widened lock spared known networks).
  if asImposed and widening[2] then
    r[6], r[9], r[11], r[#FIELDS + 2] = widening[2], widening[3], '1', ''
  end
  return r
end
local a = 3
local out = {}
for g = 1, #KEYS do
  local base = KEYS[g]
  local n = tonumber(ARGV[a]); a = a + 1
  local replies = {}
  for i = 1, n do
    local lockSub, levelSub, lockId, scope, key, mode, rule, failures, spares, levelMemory, permanentAfter, schedule, widen =
      ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7],
      ARGV[a + 8], tonumber(ARGV[a + 9]), tonumber(ARGV[a + 10]), ARGV[a + 11], ARGV[a + 12]
    local causeAt = tonumber(ARGV[a + 13])
    a = a + 14
    local lockKey, untilMark = base .. ':' .. lockSub, base .. ':until:' .. lockSub
    local current = redis.call('HMGET', lockKey, 'id', 'spares', 'widenedBy', 'rule', 'failures')
    if widen == '1' then
      if current[1] and current[2] == '1' then
        -- Who widened it and when: a redelivery of that cause announces it again, as it was;
        -- and what it was, for a redelivery of the failure that imposed it.
        redis.call('HSET', lockKey, 'spares', '0', 'rule', rule, 'failures', failures,
          'widenedBy', lockId, 'widenedAt', string.format('%.0f', now),
          'imposedRule', current[4], 'imposedFailures', current[5])
        replies[i] = reply('widened', lockKey)
      elseif current[1] and current[3] == lockId then
        replies[i] = reply('widened', lockKey)
      else
        replies[i] = { 'skipped' }
      end
    elseif current[1] then
      if current[1] == lockId then replies[i] = reply('existing', lockKey, true) else replies[i] = { 'skipped' } end
    elseif redis.call('EXISTS', base .. ':lifted:' .. lockId) == 1 then
      replies[i] = { 'skipped' }
    else
      local ended = tonumber(redis.call('GET', untilMark)) or 0
      if causeAt and causeAt <= ended then
        -- Judged while the key's last lockout was in force (it ended since): as then, no new one.
        replies[i] = { 'skipped' }
      else
        local level = 1
        if levelSub ~= '' then
          level = redis.call('INCR', base .. ':' .. levelSub)
        end
        local durations = {}
        for d in string.gmatch(schedule, '[^,]+') do durations[#durations + 1] = tonumber(d) end
        local duration = durations[math.min(level, #durations)]
        local permanent = permanentAfter > 0 and level > permanentAfter
        if levelSub ~= '' then
          -- Remembered for levelMemory after the lock ends, so the next one backs off further.
          -- A permanent lock ends only by an admin lift: levelMemory from now, as no expiry
          -- would make every later lock of the key permanent at once, forever.
          local memory = levelMemory
          if not permanent then memory = duration + levelMemory end
          redis.call('PEXPIRE', base .. ':' .. levelSub, memory)
        end
        local untilMs = ''
        if not permanent then untilMs = string.format('%.0f', now + duration) end
        redis.call('DEL', lockKey)
        redis.call('HSET', lockKey, 'id', lockId, 'scope', scope, 'key', key, 'mode', mode, 'rule', rule,
          'until', untilMs, 'imposedAt', string.format('%.0f', now), 'failures', failures, 'level', level, 'spares', spares)
        if not permanent then
          redis.call('PEXPIRE', lockKey, duration)
          local ends = math.max(now + duration, ended)
          redis.call('SET', untilMark, string.format('%.0f', ends), 'PX', string.format('%.0f', ends - now + claimTtl))
        end
        replies[i] = reply('imposed', lockKey)
      end
    end
  end
  out[g] = replies
end
return out
`;

/**
 * The lift at expiry of one lockout. KEYS[1]: base. ARGV: lockSub, lockId, now, claimTtl.
 * Replies {lift} when this call lifts it (announce), {lift, superseded} when it ended and
 * a newer lockout of the same key is in force (announce; the record is the newer one's),
 * {early, until} when it has not ended yet, {permanent}, or {lifted, by} when an admin
 * lifted it first.
 */
export const LOCKOUT_LIFT_EXPIRED_SCRIPT = `
local base, lockSub, lockId, now, claimTtl = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lockKey = base .. ':' .. lockSub
local current = redis.call('HMGET', lockKey, 'id', 'until')
local superseded = false
if current[1] == lockId then
  if current[2] == '' then return { 'permanent' } end
  if tonumber(current[2]) > now then return { 'early', current[2] } end
  redis.call('DEL', lockKey)
elseif current[1] then
  -- A lockout is imposed only when none is in force: this one has ended.
  superseded = true
end
local claim = base .. ':lifted:' .. lockId
if not redis.call('SET', claim, 'expiry', 'NX', 'PX', claimTtl) then
  local by = redis.call('GET', claim)
  if by ~= 'expiry' then return { 'lifted', by or '' } end
end
if superseded then return { 'lift', 'superseded' } end
return { 'lift' }
`;

/**
 * An admin lift. KEYS[1]: base. ARGV: claimTtl, now, markTtl, then four lists, each its
 * length and its sub-keys: the lock sub-keys; the evidence sub-keys (windows) to forget (so
 * the next failure does not re-impose at once); the windows whose members are the dedupe of
 * failure ids (the streak), forgotten as evidence but kept as the dedupe (every score 0,
 * which no count includes); the watermark sub-keys. Then optionally 'only' and the lockout
 * ids to lift (others are left in force). Replies the fields of each lockout lifted
 * ({@link RECORD_FIELDS} order), then its lock sub-key. A lockout lifted takes its
 * `until:<lockSub>` along: it ended now, not at its end.
 *
 * Forgetting the windows is not enough: a redelivery of the failures counted before the
 * lift adds them again. Each watermark is set to the lift's time, or to the latest event
 * time in the windows forgotten when that is later (an app whose clock runs ahead), and
 * never lowered; the counting scripts count only failures after it (`reset` for the
 * streak, `liftedat:<window>` for the others). Kept markTtl at least. The streak's ids
 * stay, so such a redelivery is still read as one (`duplicate`), not as new failures.
 */
export const LOCKOUT_ADMIN_LIFT_SCRIPT = `
local base, claimTtl, now, markTtl = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local FIELDS = { 'id', 'scope', 'key', 'mode', 'rule', 'until', 'imposedAt', 'failures', 'level', 'spares' }
local p = 4
local function list()
  local items = {}
  for i = 1, tonumber(ARGV[p]) do items[i] = ARGV[p + i] end
  p = p + #items + 1
  return items
end
local locks, clear, dedupe, marks = list(), list(), list(), list()
local only = nil
if ARGV[p] == 'only' then
  only = {}
  for i = p + 1, #ARGV do only[ARGV[i]] = true end
end
local out = {}
for _, sub in ipairs(locks) do
  local lockKey = base .. ':' .. sub
  local values = redis.call('HMGET', lockKey, unpack(FIELDS))
  if values[1] and (only == nil or only[values[1]]) then
    redis.call('DEL', lockKey, base .. ':until:' .. sub)
    redis.call('SET', base .. ':lifted:' .. values[1], 'admin', 'PX', claimTtl)
    local r = {}
    for j = 1, #FIELDS do r[j] = values[j] or '' end
    r[#FIELDS + 1] = sub
    out[#out + 1] = r
  end
end
local mark = now
local function latest(window)
  local score = redis.call('ZREVRANGE', window, 0, 0, 'WITHSCORES')[2]
  if score and tonumber(score) > mark then mark = tonumber(score) end
end
for _, sub in ipairs(clear) do
  local window = base .. ':' .. sub
  latest(window)
  redis.call('DEL', window)
end
for _, sub in ipairs(dedupe) do
  local window = base .. ':' .. sub
  latest(window)
  local ttl = redis.call('PTTL', window)
  if ttl ~= -2 then
    redis.call('ZUNIONSTORE', window, 1, window, 'WEIGHTS', 0)
    if ttl > 0 then redis.call('PEXPIRE', window, ttl) end
  end
end
for _, sub in ipairs(marks) do
  local key = base .. ':' .. sub
  local held = tonumber(redis.call('GET', key) or '0')
  redis.call('SET', key, string.format('%.0f', math.max(mark, held)), 'PX', math.max(markTtl, redis.call('PTTL', key)))
end
return out
`;

/**
 * Adds failures to the global spray figures. KEYS[1]: global base. ARGV head: now,
 * bucket, window, baselineWindows; then n failures of 4 fields `t`, `id`, `username`, `ip`.
 * HyperLogLogs make re-adding a redelivered failure a no-op.
 */
export const LOCKOUT_SPRAY_ADD_SCRIPT = `
local base = KEYS[1]
local now, bucket, window, baselineWindows = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local byBucket, byWindow = {}, {}
local oldestBucket = now - window - bucket
local oldestWindow = now - (baselineWindows + 2) * window
local i = 5
while i <= #ARGV do
  local t, id, user, ip = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if t > oldestBucket then
    local b = string.format('%.0f', math.floor(t / bucket) * bucket)
    local set = byBucket[b]
    if not set then set = { e = {}, u = {}, i = {}, p = {} }; byBucket[b] = set end
    set.e[#set.e + 1] = id; set.u[#set.u + 1] = user; set.i[#set.i + 1] = ip; set.p[#set.p + 1] = user .. '|' .. ip
  end
  if t > oldestWindow then
    local w = string.format('%.0f', math.floor(t / window) * window)
    local ids = byWindow[w]
    if not ids then ids = {}; byWindow[w] = ids end
    ids[#ids + 1] = id
  end
end
local function pfadd(key, values, ttl)
  for s = 1, #values, 500 do
    redis.call('PFADD', key, unpack(values, s, math.min(s + 499, #values)))
  end
  redis.call('PEXPIRE', key, ttl)
end
for b, set in pairs(byBucket) do
  for _, kind in ipairs({ 'e', 'u', 'i', 'p' }) do pfadd(base .. ':b:' .. b .. ':' .. kind, set[kind], window + 2 * bucket) end
end
for w, ids in pairs(byWindow) do pfadd(base .. ':c:' .. w, ids, (baselineWindows + 3) * window) end
return 1
`;

/**
 * The spray window ending now. KEYS[1]: global base. ARGV: now, bucket, window,
 * baselineWindows. Replies {failures, users, ips, pairs, baselineTotal} where the baseline
 * is the failures of the whole windows before the ones the current window overlaps.
 * The window slides by buckets: the buckets wholly inside (now - window, now], and the
 * bucket of now.
 */
export const LOCKOUT_SPRAY_WINDOW_SCRIPT = `
local base = KEYS[1]
local now, bucket, window, baselineWindows = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local keys = { e = {}, u = {}, i = {}, p = {} }
local first = math.floor((now - window) / bucket) * bucket + bucket
local b = first
while b <= now do
  for kind, list in pairs(keys) do list[#list + 1] = base .. ':b:' .. string.format('%.0f', b) .. ':' .. kind end
  b = b + bucket
end
local function count(list) if #list == 0 then return 0 end return redis.call('PFCOUNT', unpack(list)) end
local current = math.floor(now / window) * window
local baseline = 0
for k = 2, baselineWindows + 1 do
  baseline = baseline + redis.call('PFCOUNT', base .. ':c:' .. string.format('%.0f', current - k * window))
end
return { count(keys.e), count(keys.u), count(keys.i), count(keys.p), baseline }
`;
