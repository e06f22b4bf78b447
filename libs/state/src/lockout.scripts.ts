// Lua scripts of lockout state (key layout in lockout-keys.ts). Each takes one or more
// base keys in KEYS; the keys it touches are the base plus a suffix, so they share the
// base's hash tag (one slot per base). Several bases go in one call only on a single
// Redis; on a cluster the caller sends one base per call.
//
// Windows are sliding logs: a zset per window scored by event time (ms); an entry counts
// for an event at time t when its score is > t - window (an entry exactly one window old
// no longer counts). Trimming keeps memory bounded and never changes a count that matters.

const WINDOW_HELPERS = `
local function since(t, window) return '(' .. string.format('%.0f', t - window) end
local function trim(key, before, cap, ttl)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', before))
  if cap > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end
  redis.call('PEXPIRE', key, ttl)
end
`;

/**
 * Counts user-side signals. Per base (one user): n events of 6 fields
 * `kind` (f = failure, s = primary login succeeded, c = sign-in complete), `id`, `t`, `ip`,
 * `network`, `session`. ARGV head: now, seenHorizon, seenCap, pairWindow, srcWindow,
 * windowCap, streakTtl, pendingTtl, knownMax, knownTtl.
 *
 * A failure replies {duplicate, known, streak, streakKnown, pairFailures, sources,
 * userLock (0 none, 1 spares known networks, 2 every network), force, pairLock}; other
 * signals reply {duplicate}. A duplicate (an id seen before) changes nothing and replies
 * the current counts.
 */
export const LOCKOUT_USER_COUNT_SCRIPT = `${WINDOW_HELPERS}
local now = tonumber(ARGV[1])
local seenHorizon, seenCap = tonumber(ARGV[2]), tonumber(ARGV[3])
local pairWindow, srcWindow, windowCap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local streakTtl, pendingTtl = tonumber(ARGV[7]), tonumber(ARGV[8])
local knownMax, knownTtl = tonumber(ARGV[9]), tonumber(ARGV[10])
local a = 11
local out = {}
for g = 1, #KEYS do
  local base = KEYS[g]
  local seen, streak, known, src = base .. ':seen', base .. ':streak', base .. ':known', base .. ':src'
  local function promote(network)
    redis.call('ZADD', known, now + knownTtl, network)
    redis.call('ZREMRANGEBYSCORE', known, '-inf', now)
    redis.call('ZREMRANGEBYRANK', known, 0, -(knownMax + 1))
    redis.call('PEXPIRE', known, knownTtl)
  end
  local n = tonumber(ARGV[a]); a = a + 1
  local replies, touched = {}, {}
  local maxT, failed = 0, false
  for i = 1, n do
    local kind, id, t = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    local ip, network, session = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
    a = a + 6
    local fresh = redis.call('ZADD', seen, 'NX', now, id) == 1
    if kind == 'f' then
      failed = true
      if t > maxT then maxT = t end
      local ks = redis.call('ZSCORE', known, network)
      local isKnown = ks and tonumber(ks) > now
      local pair = base .. ':pair:' .. ip
      if fresh then
        redis.call('HINCRBY', streak, 'total', 1)
        if isKnown then
          redis.call('HINCRBY', streak, 'known', 1)
        else
          redis.call('ZADD', pair, t, id)
          redis.call('ZADD', src, 'GT', t, ip)
          touched[pair] = true
        end
      end
      local st = redis.call('HMGET', streak, 'total', 'known')
      local pairCount = 0
      if not isKnown then pairCount = redis.call('ZCOUNT', pair, since(t, pairWindow), '+inf') end
      local lock = redis.call('HMGET', base .. ':lock', 'id', 'spares')
      local userLock = 0
      if lock[1] then userLock = (lock[2] == '1') and 1 or 2 end
      replies[i] = {
        fresh and 0 or 1, isKnown and 1 or 0, tonumber(st[1] or 0), tonumber(st[2] or 0), pairCount,
        redis.call('ZCOUNT', src, since(t, srcWindow), '+inf'), userLock,
        redis.call('EXISTS', base .. ':force'), redis.call('EXISTS', base .. ':pairlock:' .. ip)
      }
    else
      if fresh then
        if kind == 's' then
          redis.call('SET', base .. ':login:' .. session, network, 'PX', pendingTtl)
          if redis.call('EXISTS', base .. ':done:' .. session) == 1 then promote(network) end
        else
          local network = redis.call('GET', base .. ':login:' .. session)
          if network then promote(network) else redis.call('SET', base .. ':done:' .. session, '1', 'PX', pendingTtl) end
          redis.call('DEL', streak)
        end
      end
      replies[i] = { fresh and 0 or 1 }
    end
  end
  trim(seen, now - seenHorizon, seenCap, seenHorizon)
  if failed then
    for pair in pairs(touched) do trim(pair, maxT - pairWindow, windowCap, pairWindow) end
    trim(src, maxT - srcWindow, windowCap, srcWindow)
    redis.call('PEXPIRE', streak, streakTtl)
  end
  out[g] = replies
end
return out
`;

/**
 * Counts failures per source network. Per base (one network): n failures of 4 fields
 * `id`, `t`, `ip`, `username`. ARGV head: now, seenHorizon, seenCap, window, windowCap.
 * Replies per failure {duplicate, ipUsers, ipFailures, networkUsers, networkIps, ipBlock,
 * networkBlock}.
 */
export const LOCKOUT_NETWORK_COUNT_SCRIPT = `${WINDOW_HELPERS}
local now = tonumber(ARGV[1])
local seenHorizon, seenCap = tonumber(ARGV[2]), tonumber(ARGV[3])
local window, windowCap = tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
local out = {}
for g = 1, #KEYS do
  local base = KEYS[g]
  local seen, users, ips = base .. ':seen', base .. ':users', base .. ':ips'
  local n = tonumber(ARGV[a]); a = a + 1
  local replies, touched = {}, {}
  local maxT = 0
  for i = 1, n do
    local id, t, ip, user = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2], ARGV[a + 3]
    a = a + 4
    if t > maxT then maxT = t end
    local ipUsers, ipFail = base .. ':ipusers:' .. ip, base .. ':ipfail:' .. ip
    local fresh = redis.call('ZADD', seen, 'NX', now, id) == 1
    if fresh then
      redis.call('ZADD', ipUsers, 'GT', t, user)
      redis.call('ZADD', ipFail, t, id)
      redis.call('ZADD', users, 'GT', t, user)
      redis.call('ZADD', ips, 'GT', t, ip)
      touched[ip] = true
    end
    local from = since(t, window)
    replies[i] = {
      fresh and 0 or 1,
      redis.call('ZCOUNT', ipUsers, from, '+inf'), redis.call('ZCOUNT', ipFail, from, '+inf'),
      redis.call('ZCOUNT', users, from, '+inf'), redis.call('ZCOUNT', ips, from, '+inf'),
      redis.call('EXISTS', base .. ':iplock:' .. ip), redis.call('EXISTS', base .. ':netlock')
    }
  end
  trim(seen, now - seenHorizon, seenCap, seenHorizon)
  for ip in pairs(touched) do
    trim(base .. ':ipusers:' .. ip, maxT - window, windowCap, window)
    trim(base .. ':ipfail:' .. ip, maxT - window, windowCap, window)
  end
  trim(users, maxT - window, windowCap, window)
  trim(ips, maxT - window, windowCap, window)
  out[g] = replies
end
return out
`;

/**
 * Imposes lockouts if absent. Per base: n impositions of 13 fields `lockSub`, `levelSub`,
 * `lockId`, `scope`, `key`, `mode`, `rule`, `failures`, `spares`, `levelMemory`,
 * `permanentAfter`, `schedule` (comma-separated durations by level, ms), `widen`.
 * ARGV head: now, claimTtl.
 *
 * Replies per imposition {status, ...record fields} where status is `imposed` (new),
 * `existing` (this very lockout, imposed before: announce again), `widened` (a user lock
 * that spared known networks now covers every network), or `skipped` with no fields (another
 * lockout is in force, or this one was lifted already).
 */
export const LOCKOUT_IMPOSE_SCRIPT = `
local now, claimTtl = tonumber(ARGV[1]), tonumber(ARGV[2])
local FIELDS = { 'id', 'scope', 'key', 'mode', 'rule', 'until', 'imposedAt', 'failures', 'level', 'spares' }
local function reply(status, lockKey)
  local r = { status }
  local values = redis.call('HMGET', lockKey, unpack(FIELDS))
  for i = 1, #FIELDS do r[i + 1] = values[i] or '' end
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
    a = a + 13
    local lockKey = base .. ':' .. lockSub
    local current = redis.call('HMGET', lockKey, 'id', 'spares')
    if widen == '1' then
      if current[1] and current[2] == '1' then
        redis.call('HSET', lockKey, 'spares', '0', 'rule', rule, 'failures', failures)
        replies[i] = reply('widened', lockKey)
      else
        replies[i] = { 'skipped' }
      end
    elseif current[1] then
      if current[1] == lockId then replies[i] = reply('existing', lockKey) else replies[i] = { 'skipped' } end
    elseif redis.call('EXISTS', base .. ':lifted:' .. lockId) == 1 then
      replies[i] = { 'skipped' }
    else
      local level = 1
      if levelSub ~= '' then
        level = redis.call('INCR', base .. ':' .. levelSub)
        redis.call('PEXPIRE', base .. ':' .. levelSub, levelMemory)
      end
      local durations = {}
      for d in string.gmatch(schedule, '[^,]+') do durations[#durations + 1] = tonumber(d) end
      local duration = durations[math.min(level, #durations)]
      local permanent = permanentAfter > 0 and level > permanentAfter
      local untilMs = ''
      if not permanent then untilMs = string.format('%.0f', now + duration) end
      redis.call('DEL', lockKey)
      redis.call('HSET', lockKey, 'id', lockId, 'scope', scope, 'key', key, 'mode', mode, 'rule', rule,
        'until', untilMs, 'imposedAt', string.format('%.0f', now), 'failures', failures, 'level', level, 'spares', spares)
      if not permanent then redis.call('PEXPIRE', lockKey, duration) end
      replies[i] = reply('imposed', lockKey)
    end
  end
  out[g] = replies
end
return out
`;

/**
 * The lift at expiry of one lockout. KEYS[1]: base. ARGV: lockSub, lockId, now, claimTtl.
 * Replies {lift} when this call lifts it (announce), {early, until} when it has not ended
 * yet, {permanent}, {superseded} (a newer lockout of the same key is in force), or
 * {lifted, by} when an admin lifted it first.
 */
export const LOCKOUT_LIFT_EXPIRED_SCRIPT = `
local base, lockSub, lockId, now, claimTtl = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lockKey = base .. ':' .. lockSub
local current = redis.call('HMGET', lockKey, 'id', 'until')
if current[1] == lockId then
  if current[2] == '' then return { 'permanent' } end
  if tonumber(current[2]) > now then return { 'early', current[2] } end
  redis.call('DEL', lockKey)
elseif current[1] then
  return { 'superseded' }
end
local claim = base .. ':lifted:' .. lockId
if not redis.call('SET', claim, 'expiry', 'NX', 'PX', claimTtl) then
  local by = redis.call('GET', claim)
  if by ~= 'expiry' then return { 'lifted', by or '' } end
end
return { 'lift' }
`;

/**
 * An admin lift. KEYS[1]: base. ARGV: claimTtl, n, n lock sub-keys, m, m evidence sub-keys
 * to forget (so the next failure does not re-impose at once). Replies the fields of each
 * lockout lifted ({@link RECORD_FIELDS} order).
 */
export const LOCKOUT_ADMIN_LIFT_SCRIPT = `
local base, claimTtl = KEYS[1], tonumber(ARGV[1])
local FIELDS = { 'id', 'scope', 'key', 'mode', 'rule', 'until', 'imposedAt', 'failures', 'level', 'spares' }
local n = tonumber(ARGV[2])
local out = {}
for i = 1, n do
  local lockKey = base .. ':' .. ARGV[2 + i]
  local values = redis.call('HMGET', lockKey, unpack(FIELDS))
  if values[1] then
    redis.call('DEL', lockKey)
    redis.call('SET', base .. ':lifted:' .. values[1], 'admin', 'PX', claimTtl)
    local r = {}
    for j = 1, #FIELDS do r[j] = values[j] or '' end
    out[#out + 1] = r
  end
end
local m = tonumber(ARGV[3 + n])
for i = 1, m do redis.call('DEL', base .. ':' .. ARGV[3 + n + i]) end
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
