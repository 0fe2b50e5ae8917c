// The breaker scripts of breakerd before the function library (commit 9cfb154), verbatim: the
// "older breakerd" of the rolling-upgrade tests, run with EVALSHA exactly as that store ran them
// (common.lua, a newline, then the operation's file). Not used by breakerd itself.

enum EarlierScripts {
    static let commonLua = #"""
--[[ common.lua: the part every breaker script shares. The store prepends it to acquire.lua,
report.lua, fold.lua, state.lua and control.lua, so each still runs as one atomic script.

KEYS (one breaker; all under its hash tag {name}, so each script runs on one Cluster slot)
  KEYS[1] state        string: the state record (below)
  KEYS[2] outstanding  zset: permit sequence number -> acquire time (ms)
  KEYS[3] trials       zset: half-open trial permit sequence number -> acquire time (ms)
  KEYS[4] history      list: event lines, newest first, capped
  KEYS[5] config       hash: policy overrides and the operator's mode (mode, mode_by, mode_why,
                       mode_at, mode_until); the only key that does not expire when idle
ARGV
  ARGV[1]   now in unix ms, or '' to use Redis's own clock (production always passes '')
  ARGV[2]   default policy: one text of twelve space-separated values, in this order: window_ms,
            buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate, open_ms, open_backoff,
            max_open_ms, half_open_permits, success_threshold, permit_ttl_ms (ms, counts, rates 0..1)
  ARGV[3]   '<idle ttl ms> <history cap>': state, outstanding, trials and history expire after the
            idle ttl unused; the history keeps history cap entries
  ARGV[4]   events channel; every event is also published on <channel>:<name>
  ARGV[5]   the breaker's name, for event lines
  ARGV[6..] the operation's own arguments
A permit is '<gen>.<seq>.<ms>': the generation it was issued in, its sequence number and when it
was issued (Redis's clock).

The state record (KEYS[1]) is one binary string of little-endian doubles:
  bytes 1-144    the header, 18 doubles:
                 seq, on, calls, fails, slows, bc, bf, bw,
                 state (0 closed, 1 open, 2 half_open), gen, head, nb, bms, open_until, opens, oks, cf, ex
  bytes 145-200  the default policy's values the common paths use, as last parsed (7 doubles):
                 window_ms, buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate, permit_ttl_ms
  bytes 201-328  the text they were parsed from (ARGV[2]), ended by a zero byte: while ARGV[2] is
                 that text, the values are read from the record instead of parsed (a text of 128
                 bytes or more is not kept)
  bytes 329-     the ring: up to nb buckets of 3 doubles (calls, failures, slow calls; slot i at
                 byte 329 + 24 * i)
head is the number of the window's current bucket (now / bucket length), whose counts are bc, bf,
bw in the header: a counted call rewrites only the header's fields on..bw, a permit only seq and
on. The ring holds the window's other buckets at (bucket number % nb); it is written when time
moves on to a new bucket, and a slot past its end (or a ring not written yet) is an empty bucket.
calls, fails and slows are the window's totals; nb and bms the bucket count and length the window
was laid out with; oks the successful trials so far; cf whether the config key holds anything; ex
when the idle expiry was last refreshed; on how many permits the outstanding zset holds, so that
the permit that creates it gives it its expiry. A record in the earlier layout (a hash) is read
once and rewritten in this one.

Cost: every call runs a script, so the common paths are kept lean. The breaker and its policy live
in one table, S; the policy is parsed (or read from the record) only by the paths that need it
(policy()); closures capture few locals (functions name the keys as KEYS[n]); numbers are made
from text by arithmetic (s + 0), not tonumber, which parses twice; no number is handed to
redis.call (Redis would format it); and the functions only rare paths need are made by lib() when
one is first needed. ]]

local K_STATE, K_OUT, K_TRIALS, K_CONF = KEYS[1], KEYS[2], KEYS[3], KEYS[5]

local now
if ARGV[1] ~= '' then
  now = ARGV[1] + 0
else
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end

-- S: the breaker as its state record holds it (raw: the record's first 328 bytes), its mode, what
-- this call changed (changed: anything; hot: only seq and on ('seq'), or only on..bw ('count')),
-- and the policy's fields once policy() has run.
local S
do
  local raw = redis.pcall('GETRANGE', K_STATE, '0', '327')
  local ring
  if type(raw) == 'table' then
    -- The earlier layout: a hash of fields state, gen, ..., and c<i>, f<i>, w<i> per bucket.
    local h = redis.call('HGETALL', K_STATE)
    local f = {}
    for i = 1, #h, 2 do f[h[i]] = tonumber(h[i + 1]) or h[i + 1] end
    raw = ''
    if f.head then
      local function n(k) return f[k] or 0 end
      local nb, head = n('nb'), n('head')
      local cur = nb > 0 and head % nb or 0
      local parts = {}
      for i = 0, nb - 1 do
        if i == cur then parts[#parts + 1] = struct.pack('<ddd', 0, 0, 0)
        else parts[#parts + 1] = struct.pack('<ddd', n('c' .. i), n('f' .. i), n('w' .. i)) end
      end
      ring = table.concat(parts)
      local code = 0
      if f.state == 'open' then code = 1 elseif f.state == 'half_open' then code = 2 end
      raw = struct.pack('<dddddddddddddddddd', n('seq'), redis.call('ZCARD', K_OUT), n('calls'), n('fails'),
        n('slows'), n('c' .. cur), n('f' .. cur), n('w' .. cur), code, n('gen'), head, nb, n('bms'),
        n('open_until'), n('opens'), n('oks'), n('cf'), n('ex'))
    end
  end
  if raw == '' then
    S = { fresh = true, state = 'closed', gen = 0, seq = 0, on = 0, calls = 0, fails = 0, slows = 0,
      bc = 0, bf = 0, bw = 0, head = 0, nb = 0, bms = 0, open_until = 0, opens = 0, oks = 0, cf = 0, ex = 0,
      mode = 'auto', raw = raw, changed = true }
  else
    local seq, on, calls, fails, slows, bc, bf, bw, code, gen, head, nb, bms, open_until, opens, oks, cf, ex =
      struct.unpack('<dddddddddddddddddd', raw)
    local state = 'closed'
    if code == 1 then state = 'open' elseif code == 2 then state = 'half_open' end
    S = { fresh = false, state = state, gen = gen, seq = seq, on = on, calls = calls, fails = fails,
      slows = slows, bc = bc, bf = bf, bw = bw, head = head, nb = nb, bms = bms, open_until = open_until,
      opens = opens, oks = oks, cf = cf, ex = ex, mode = 'auto', raw = raw }
  end
  if ring then
    -- Migrated: the next write replaces the hash.
    S.ring, S.ring_changed, S.changed = ring, true, true
  end
end

-- The operator's settings (policy overrides and mode) live in their own key, read only when the
-- state says there are some (cf), or when the state is new (it may have expired while the
-- settings stayed). mode_by, mode_why, mode_at and mode_until are in S once it has been read.
if S.fresh or S.cf == 1 then
  local conf = redis.call('HGETALL', K_CONF)
  S.mode_by, S.mode_why, S.mode_at, S.mode_until = '', '', 0, 0
  for i = 1, #conf, 2 do
    local k, v = conf[i], conf[i + 1]
    if k == 'mode' then S.mode = v
    elseif k == 'mode_by' then S.mode_by = v
    elseif k == 'mode_why' then S.mode_why = v
    elseif k == 'mode_at' then S.mode_at = tonumber(v)
    elseif k == 'mode_until' then S.mode_until = tonumber(v) end
  end
  local cf = (#conf > 0) and 1 or 0
  if cf ~= S.cf then S.cf = cf; S.changed = true end
  if #conf > 0 then S.conf = conf end
end

-- The policy, as fields of S: the default (ARGV[2]) with the breaker's overrides, and the window's
-- geometry under it (buckets of bucket_ms; idx the current bucket's number). policy() gives what
-- the common paths use (window_ms, buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate,
-- permit_ttl_ms); policy(true) all of it (open_ms, open_backoff, max_open_ms, half_open_permits,
-- success_threshold too). The first seven come from the record while ARGV[2] is the text they were
-- parsed from, else from ARGV[2], and the record keeps them for next time (S.pcache).
local function policy(all)
  local first = not S.idx
  if first then
    local text, raw = ARGV[2], S.raw
    local n = #text
    if n < 128 and #raw >= 328 and string.find(raw, text, 201, true) == 201 and string.byte(raw, 201 + n) == 0 then
      S.window_ms, S.buckets, S.failure_rate, S.min_calls, S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms =
        struct.unpack('<ddddddd', raw, 145)
    else
      local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 = string.match(text,
        '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
      S.window_ms, S.buckets, S.failure_rate, S.min_calls, S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms =
        a1 + 0, a2 + 0, a3 + 0, a4 + 0, a5 + 0, a6 + 0, a12 + 0
      S.open_ms, S.open_backoff, S.max_open_ms, S.half_open_permits, S.success_threshold =
        a7 + 0, a8 + 0, a9 + 0, a10 + 0, a11 + 0
      if n < 128 then
        local zero = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
        S.pcache = struct.pack('<ddddddd', S.window_ms, S.buckets, S.failure_rate, S.min_calls,
          S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms) .. text .. string.sub(string.rep(zero, 4), n + 1)
      end
    end
    if S.conf then all = true end
  end
  if all and not S.open_ms then
    local a7, a8, a9, a10, a11 = string.match(ARGV[2], '^%S+ %S+ %S+ %S+ %S+ %S+ (%S+) (%S+) (%S+) (%S+) (%S+) ')
    S.open_ms, S.open_backoff, S.max_open_ms, S.half_open_permits, S.success_threshold =
      a7 + 0, a8 + 0, a9 + 0, a10 + 0, a11 + 0
  end
  if first then
    local conf = S.conf
    if conf then
      for i = 1, #conf, 2 do
        local k, v = conf[i], tonumber(conf[i + 1])
        if k == 'window_ms' then S.window_ms = v
        elseif k == 'buckets' then S.buckets = v
        elseif k == 'failure_rate' then S.failure_rate = v
        elseif k == 'min_calls' then S.min_calls = v
        elseif k == 'slow_call_ms' then S.slow_call_ms = v
        elseif k == 'slow_call_rate' then S.slow_call_rate = v
        elseif k == 'open_ms' then S.open_ms = v
        elseif k == 'open_backoff' then S.open_backoff = v
        elseif k == 'max_open_ms' then S.max_open_ms = v
        elseif k == 'half_open_permits' then S.half_open_permits = v
        elseif k == 'success_threshold' then S.success_threshold = v
        elseif k == 'permit_ttl_ms' then S.permit_ttl_ms = v end
      end
    end
    S.bucket_ms = math.floor(S.window_ms / S.buckets)
    S.idx = math.floor(now / S.bucket_ms)
  end
end

if S.fresh then
  -- A new breaker stores where its window starts, or the next call would start it again.
  policy()
  S.head, S.nb, S.bms = S.idx, S.buckets, S.bucket_ms
end

-- The functions only rare paths need (a transition, a new bucket, a mode, a half-open breaker),
-- made on first use so that the common paths do not pay for them.
local L
local function lib()
  if L then return L end
  L = {}
  local ZERO = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'  -- an empty bucket

  -- The ring of buckets, read the first time it is needed.
  function L.load_ring()
    if S.ring == nil then
      if S.fresh then S.ring = '' else S.ring = redis.call('GETRANGE', KEYS[1], '328', '-1') end
    end
  end

  -- Ring slot s: calls, failures, slow calls.
  function L.ring_bucket(s)
    local off = s * 24
    if #S.ring < off + 24 then return 0, 0, 0 end
    local c, f, w = struct.unpack('<ddd', S.ring, off + 1)
    return c, f, w
  end

  -- Writes bytes (whole buckets) into the ring from slot s on, wrapping past its end.
  function L.ring_put(s, bytes)
    local ring = S.ring
    local len = S.buckets * 24
    -- A ring not laid out for this window holds only empty buckets (see clear_window).
    if #ring ~= len then ring = string.rep(ZERO, S.buckets) end
    local a, n = s * 24, #bytes
    if a + n <= len then
      ring = string.sub(ring, 1, a) .. bytes .. string.sub(ring, a + n + 1)
    else
      local k = len - a
      ring = string.sub(bytes, k + 1) .. string.sub(ring, n - k + 1, a) .. string.sub(bytes, 1, k)
    end
    S.ring, S.ring_changed, S.changed = ring, true, true
  end

  -- Empties the window: totals to zero, every bucket gone. With no calls in the window every
  -- bucket is empty already, and the ring is left as it is.
  function L.clear_window()
    policy()
    if S.calls > 0 then S.ring, S.ring_changed = '', true end
    S.calls, S.fails, S.slows, S.bc, S.bf, S.bw = 0, 0, 0, 0, 0, 0
    S.head, S.nb, S.bms = S.idx, S.buckets, S.bucket_ms
    S.changed = true
  end

  -- What the buckets that fell out of the window since the last report held (those after head,
  -- up to now: fewer than B, and only once time has moved into a new bucket).
  function L.fallen_buckets()
    L.load_ring()
    local c, f, w = 0, 0, 0
    for i = S.head + 1, S.idx do
      local a, b, d = L.ring_bucket(i % S.buckets)
      c, f, w = c + a, f + b, w + d
    end
    return c, f, w
  end

  -- Drops the buckets that fell out of the window since the last report; the current bucket's
  -- counts move from the header into the ring.
  function L.advance_window()
    policy()
    local B, idx = S.buckets, S.idx
    if S.nb ~= B or S.bms ~= S.bucket_ms then L.clear_window(); return end
    if idx <= S.head then return end
    if S.calls == 0 or idx - S.head >= B then L.clear_window(); return end
    local c, f, w = L.fallen_buckets()
    S.calls, S.fails, S.slows = S.calls - c, S.fails - f, S.slows - w
    L.ring_put(S.head % B, struct.pack('<ddd', S.bc, S.bf, S.bw) .. string.rep(ZERO, idx - S.head))
    S.bc, S.bf, S.bw = 0, 0, 0
    S.head = idx
  end

  local function event_line(from, to, reason, figures)
    local line = ARGV[5] .. ' ' .. from .. '->' .. to .. ' gen=' .. S.gen .. ' at=' .. now .. ' reason=' .. reason
    if figures ~= '' then line = line .. ' ' .. figures end
    if S.events then S.events[#S.events + 1] = line else S.events = { line } end
  end

  function L.transition(to, reason, figures)
    local from = S.state
    S.gen = S.gen + 1
    S.state = to
    S.changed = true
    event_line(from, to, reason, figures)
  end

  -- An event that is not a transition (a mode set or lifted, a config change): no new generation.
  function L.note(reason, figures)
    event_line(S.state, S.state, reason, figures)
  end

  function L.open_breaker(reason, figures)
    policy(true)
    S.opens = S.opens + 1
    -- Multiplied step by step, exactly as BreakerPolicy.openDuration does.
    local d = S.open_ms
    local i = 1
    while i < S.opens and d < S.max_open_ms do d = d * S.open_backoff; i = i + 1 end
    if d > S.max_open_ms then d = S.max_open_ms end
    d = math.floor(d)
    S.open_until = now + d
    S.oks = 0
    L.clear_window()
    redis.call('DEL', KEYS[3])
    L.transition('open', reason, figures .. ' open_ms=' .. d .. ' opens=' .. S.opens)
  end

  function L.close_breaker(reason, figures)
    S.opens, S.oks, S.open_until = 0, 0, 0
    L.clear_window()
    redis.call('DEL', KEYS[3])
    L.transition('closed', reason, figures)
  end

  function L.half_open(reason, figures)
    S.oks = 0
    redis.call('DEL', KEYS[3])
    L.transition('half_open', reason, figures)
  end

  -- A trial whose lease ran out unreported is a failed trial.
  function L.sweep_trials()
    if S.state ~= 'half_open' then return end
    policy()
    local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', string.format('%d', now - S.permit_ttl_ms),
      'LIMIT', '0', '1')
    if #expired > 0 then
      L.open_breaker('trial_expired', 'permit=' .. S.gen .. '.' .. expired[1] .. ' permit_ttl_ms=' .. S.permit_ttl_ms)
    end
  end

  -- Called after an operator changed the settings key: whether it still holds anything.
  function L.settings_changed()
    S.cf = redis.call('EXISTS', KEYS[5])
    S.changed = true
  end

  function L.clear_mode()
    redis.call('HDEL', KEYS[5], 'mode', 'mode_by', 'mode_why', 'mode_at', 'mode_until')
    S.mode, S.mode_by, S.mode_why, S.mode_at, S.mode_until = 'auto', '', '', 0, 0
    L.settings_changed()
  end

  -- Back to auto. After a forced open the breaker stays open with its time up, so the next
  -- acquire goes half-open and trials test the dependency before traffic returns.
  function L.leave_mode(reason, figures)
    local was = S.mode
    L.clear_mode()
    if was == 'forced_open' and S.state == 'open' then
      S.open_until = now
    end
    L.note(reason, 'mode=' .. was .. '->auto' .. figures)
  end

  function L.expire_mode()
    if S.mode ~= 'auto' and S.mode_until > 0 and now >= S.mode_until then L.leave_mode('mode_expired', '') end
  end

  -- How long a denied caller should wait before asking again.
  function L.retry_after()
    if S.mode == 'forced_open' then
      if S.mode_until > 0 then return math.max(1, S.mode_until - now) end
      policy(true)
      return S.open_ms
    end
    if S.state == 'open' then return math.max(0, S.open_until - now) end
    if S.state == 'half_open' then
      policy()
      local first = redis.call('ZRANGE', KEYS[3], '0', '0', 'WITHSCORES')
      if #first == 2 then return math.max(1, first[2] + S.permit_ttl_ms - now) end
    end
    return 0
  end

  return L
end

-- Adds outcomes (c calls, f failures, w slow calls) to the window's current bucket and its
-- totals, dropping the buckets that left the window first, then checks the trip rule once: with
-- at least min_calls in the window, a failure rate or (when slow_call_ms is set) a slow rate at its
-- threshold opens the breaker. False, counting nothing, when Redis's clock stepped back past the
-- window, so no bucket can take them.
local function count_outcomes(c, f, w)
  policy()
  local idx = S.idx
  if idx > S.head or S.nb ~= S.buckets or S.bms ~= S.bucket_ms then lib().advance_window() end
  if idx < S.head then
    -- Redis's clock stepped back: a bucket still in the window takes them, an older one cannot.
    if S.head - idx >= S.buckets then return false end
    local X = lib()
    X.load_ring()
    local s = idx % S.buckets
    local a, b, d = X.ring_bucket(s)
    X.ring_put(s, struct.pack('<ddd', a + c, b + f, d + w))
  else
    S.bc, S.bf, S.bw = S.bc + c, S.bf + f, S.bw + w
  end
  local calls, fails, slows = S.calls + c, S.fails + f, S.slows + w
  S.calls, S.fails, S.slows, S.hot = calls, fails, slows, true
  if calls >= S.min_calls then
    local fr = fails / calls
    local sr = slows / calls
    if fr >= S.failure_rate then
      lib().open_breaker('failure_rate', string.format('failure_rate=%.4g threshold=%.4g calls=%d failures=%d',
        fr, S.failure_rate, calls, fails))
    elseif S.slow_call_ms > 0 and sr >= S.slow_call_rate then
      lib().open_breaker('slow_call_rate', string.format('slow_rate=%.4g threshold=%.4g calls=%d slow=%d slow_call_ms=%d',
        sr, S.slow_call_rate, calls, slows, S.slow_call_ms))
    end
  end
  return true
end

-- Writes what changed, publishes and records the events, keeps the breaker's keys alive, and
-- returns the reply with this call's events appended (so the caller can log and count them).
-- The idle expiry is refreshed when a sixteenth of it has passed, not on every call: the state
-- record's and the permit zsets' (and the count of outstanding permits is taken again then).
-- Between refreshes a zset gets its expiry from the permit that creates it.
local function finish(reply)
  local idle = string.match(ARGV[3], '^%d+')
  local refresh = S.fresh or now - S.ex >= idle / 16
  if refresh then
    S.ex, S.changed = now, true
    S.on = redis.call('ZCARD', KEYS[2])
    if S.on > 0 then redis.call('PEXPIRE', KEYS[2], idle) end
    if S.state == 'half_open' then redis.call('PEXPIRE', KEYS[3], idle) end
  end
  if S.changed then
    local code = 0
    if S.state == 'open' then code = 1 elseif S.state == 'half_open' then code = 2 end
    local h = struct.pack('<dddddddddddddddddd', S.seq, S.on, S.calls, S.fails, S.slows, S.bc, S.bf, S.bw,
      code, S.gen, S.head, S.nb, S.bms, S.open_until, S.opens, S.oks, S.cf, S.ex)
    if S.fresh or S.ring_changed or #S.raw < 328 then
      -- The whole record: header, policy block (as it is, or new, or empty), ring.
      local block = S.pcache
      if not block then
        if #S.raw >= 328 then
          block = string.sub(S.raw, 145, 328)
        else
          policy()
          block = S.pcache or string.rep('\0\0\0\0\0\0\0\0', 23)
        end
      end
      local record = h .. block .. (S.ring or '')
      if refresh then
        redis.call('SET', KEYS[1], record, 'PX', idle)
      else
        redis.call('SET', KEYS[1], record, 'KEEPTTL')
      end
    else
      redis.call('SETRANGE', KEYS[1], '0', h)
      if S.pcache then redis.call('SETRANGE', KEYS[1], '144', S.pcache) end
      if refresh then redis.call('PEXPIRE', KEYS[1], idle) end
    end
  else
    if S.hot == 'seq' then
      redis.call('SETRANGE', KEYS[1], '0', struct.pack('<dd', S.seq, S.on))
    elseif S.hot then
      redis.call('SETRANGE', KEYS[1], '8', struct.pack('<ddddddd', S.on, S.calls, S.fails, S.slows, S.bc, S.bf, S.bw))
    end
    if S.pcache then redis.call('SETRANGE', KEYS[1], '144', S.pcache) end
  end
  local events = S.events
  if events then
    redis.call('LPUSH', KEYS[4], unpack(events))
    redis.call('LTRIM', KEYS[4], '0', string.match(ARGV[3], '%d+$') - 1)
    redis.call('PEXPIRE', KEYS[4], idle)
    local channel = ARGV[4]
    for i = 1, #events do
      redis.call('PUBLISH', channel, events[i])
      redis.call('PUBLISH', channel .. ':' .. ARGV[5], events[i])
      reply[#reply + 1] = events[i]
    end
  end
  return reply
end
"""#

    static let acquireLua = #"""
--[[ acquire.lua: may this caller call the dependency now?
KEYS, ARGV[1..5]: see common.lua. No arguments of its own.
Moves an open breaker whose time is up to half-open, fails trials whose lease ran out, hands out at
most half_open_permits live trial permits across all callers, and honours the operator's mode.
Returns { 'PERMIT', state, permit, 0, gen, event... }   (permit: '<gen>.<seq>.<issued ms>')
     or { 'DENY', state, '', retry_after_ms, gen, event... }
(events: the lines of any transitions this call made, as published) ]]

if S.mode ~= 'auto' then lib().expire_mode() end

-- Decide: a permit into the outstanding zset ('out'), a trial permit ('trial', with the number of
-- live trials), or a deny (retry: milliseconds to wait).
local grant, live, retry
if S.mode == 'forced_open' then
  retry = lib().retry_after()
elseif S.mode == 'forced_closed' then
  grant = 'out'
else
  if S.state ~= 'closed' then
    if S.state == 'half_open' then lib().sweep_trials() end
    if S.state == 'open' and now >= S.open_until then
      policy(true)
      lib().half_open('open_elapsed', 'permits=' .. S.half_open_permits)
    end
  end
  if S.state == 'closed' then
    grant = 'out'
  else
    if S.state == 'half_open' then
      policy(true)
      live = redis.call('ZCARD', K_TRIALS)
      if live < S.half_open_permits then grant = 'trial' end
    end
    if not grant then
      if S.mode == 'metrics_only' then
        -- Would be denied; metrics_only lets it through as a permit that counts nothing.
        grant = 'out'
      elseif S.state == 'open' then
        -- retry_after() for an open breaker, without making the rarely needed functions.
        retry = math.max(0, S.open_until - now)
      else
        retry = lib().retry_after()
      end
    end
  end
end

local reply
if grant then
  -- The next permit. One format makes it; its sequence number and time are cut from it for the
  -- zset. A permit that creates its zset gives it the idle expiry.
  local seq = S.seq + 1
  S.seq, S.hot = seq, 'seq'
  local permit = string.format('%d.%d.%d', S.gen, seq, now)
  local s, t = string.match(permit, '^%d+%.(%d+)%.(%d+)$')
  if grant == 'trial' then
    redis.call('ZADD', K_TRIALS, t, s)
    if live == 0 then redis.call('PEXPIRE', K_TRIALS, string.match(ARGV[3], '^%d+')) end
  else
    local added = redis.call('ZADD', K_OUT, t, s)
    if S.on <= 0 then redis.call('PEXPIRE', K_OUT, string.match(ARGV[3], '^%d+')) end
    S.on = S.on + added
    -- Permits not reported within their lease are forgotten (a report checks the lease itself, so
    -- this is only housekeeping, done every 16th permit).
    if seq % 16 == 0 then
      policy()
      S.on = S.on - redis.call('ZREMRANGEBYSCORE', K_OUT, '-inf', string.format('%d', now - S.permit_ttl_ms))
    end
  end
  reply = { 'PERMIT', S.state, permit, 0, S.gen }
else
  reply = { 'DENY', S.state, '', retry, S.gen }
end
return finish(reply)
"""#

    static let reportLua = #"""
--[[ report.lua: the outcome of a call made under a permit.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] permit, as acquire issued it ('<gen>.<seq>.<issued ms>')
  ARGV[7] outcome: SUCCESS, FAILURE or IGNORE
  ARGV[8] latency in ms, or '' to measure from the acquire on Redis's clock
A permit from an earlier generation never causes a transition; a permit counts once. In closed
state the outcome goes into the current bucket and may trip the breaker; in half-open a failed or
slow trial re-opens it and success_threshold successful trials close it.
Returns { 'OK', state, effect, gen, event... }
  effect: counted | ignored | stale (earlier generation) | expired (already reported, or its
  lease ran out) | not_counted (a forced mode, or a permit metrics_only let through)
Errors: 'UNKNOWN_PERMIT ...' for a permit this breaker never issued; 'BAD_OUTCOME ...'. ]]

local token, outcome, latency_arg = ARGV[6], ARGV[7], ARGV[8]
if outcome ~= 'SUCCESS' and outcome ~= 'FAILURE' and outcome ~= 'IGNORE' then
  return redis.error_reply('BAD_OUTCOME ' .. outcome)
end
local pg, member, pt = string.match(token, '^(%d+)%.(%d+)%.(%d+)$')
local ps
if not pg then return redis.error_reply('UNKNOWN_PERMIT ' .. token) end
pg, ps, pt = pg + 0, member + 0, pt + 0
if pg > S.gen or ps < 1 or ps > S.seq then
  return redis.error_reply('UNKNOWN_PERMIT ' .. token)
end
-- The zsets' members are sequence numbers as issued, without leading zeros.
if string.byte(member) == 48 then member = string.format('%d', ps) end
-- The issue time rides in the permit, so a report needs no lookup beyond removing the permit
-- (which is also what makes a second report of it count nothing).
local acquired = pt
if now < pt then acquired = now end
local ms
if latency_arg ~= '' then ms = latency_arg + 0 else ms = now - acquired end

if S.mode ~= 'auto' then lib().expire_mode() end
local runs = S.mode == 'auto' or S.mode == 'metrics_only'
if runs and S.state == 'half_open' then lib().sweep_trials() end

local effect
local trial = false
if pg == S.gen and S.state == 'half_open' then
  trial = redis.call('ZREM', K_TRIALS, member) == 1
end

if pg ~= S.gen then
  local removed = redis.call('ZREM', K_OUT, member)
  if removed > 0 then S.on, S.hot = S.on - removed, true end
  effect = 'stale'
elseif trial then
  policy()
  if outcome == 'IGNORE' then
    effect = 'ignored'
  elseif outcome == 'FAILURE' then
    effect = 'counted'
    lib().open_breaker('trial_failed', 'permit=' .. token)
  elseif S.slow_call_ms > 0 and ms >= S.slow_call_ms then
    effect = 'counted'
    lib().open_breaker('trial_slow', 'permit=' .. token .. ' latency_ms=' .. ms .. ' slow_call_ms=' .. S.slow_call_ms)
  else
    effect = 'counted'
    S.oks, S.changed = S.oks + 1, true
    policy(true)
    if S.oks >= S.success_threshold then
      lib().close_breaker('trials_succeeded', 'successes=' .. S.oks)
    end
  end
else
  local outstanding = redis.call('ZREM', K_OUT, member) == 1
  if outstanding then
    S.on, S.hot = S.on - 1, true
    policy()
  end
  if not outstanding or acquired <= now - S.permit_ttl_ms then
    -- Reported twice, or after its lease: it counts once, and a lapsed permit counts nothing.
    effect = 'expired'
  elseif outcome == 'IGNORE' then
    effect = 'ignored'
  elseif S.state ~= 'closed' or not runs then
    effect = 'not_counted'
  else
    local slow = 0
    if S.slow_call_ms > 0 and ms >= S.slow_call_ms then slow = 1 end
    if count_outcomes(1, outcome == 'FAILURE' and 1 or 0, slow) then
      effect = 'counted'
    else
      effect = 'not_counted'
    end
  end
end

return finish({ 'OK', S.state, effect, S.gen })
"""#

    static let foldLua = #"""
--[[ fold.lua: outcomes a breakerd process gathered under its own permits, folded in at once.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] the generation the outcomes were gathered under
  ARGV[7] calls, ARGV[8] failures, ARGV[9] slow calls (failures and slow calls are among the calls;
          IGNORE outcomes are not calls)
If the breaker is closed, its mode runs the state machine (auto or metrics_only) and the generation
is the current one, the outcomes go into the current bucket as that many reports would, with one
trip check after them (count_outcomes); otherwise they count nothing. With no calls it only reads.
Returns { 'OK', state, effect, gen, retry_after_ms, mode, slow_call_ms, permit_ttl_ms, event... }
  effect: counted | stale (another generation) | not_counted (not closed, a forced mode, or Redis's
  clock stepped back past the window)
  retry_after_ms: what a denied acquire would say now (0 when an acquire would be permitted under auto)
  mode: the operator's mode; slow_call_ms, permit_ttl_ms: the breaker's policy, for the caller's
  own permits
Errors: 'BAD_COUNTS ...' unless 0 <= failures, slow <= calls. ]]

local fg, fc, ff, fw = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
if not (fg and fc and ff and fw) or fg < 0 or fc < 0 or ff < 0 or fw < 0 or ff > fc or fw > fc
  or fg % 1 ~= 0 or fc % 1 ~= 0 or ff % 1 ~= 0 or fw % 1 ~= 0 then
  return redis.error_reply('BAD_COUNTS ' .. ARGV[6] .. ' ' .. ARGV[7] .. ' ' .. ARGV[8] .. ' ' .. ARGV[9])
end

policy()
if S.mode ~= 'auto' then lib().expire_mode() end
local runs = S.mode == 'auto' or S.mode == 'metrics_only'
if runs and S.state == 'half_open' then lib().sweep_trials() end

local effect
if fg ~= S.gen then
  effect = 'stale'
elseif S.state ~= 'closed' or not runs then
  effect = 'not_counted'
elseif fc == 0 or count_outcomes(fc, ff, fw) then
  effect = 'counted'
else
  effect = 'not_counted'
end

local retry = 0
if S.mode == 'forced_open' or S.state == 'open' then
  retry = lib().retry_after()
elseif S.state == 'half_open' then
  policy(true)
  if redis.call('ZCARD', K_TRIALS) >= S.half_open_permits then retry = lib().retry_after() end
end

return finish({ 'OK', S.state, effect, S.gen, retry, S.mode, S.slow_call_ms, S.permit_ttl_ms })
"""#

    static let stateLua = #"""
--[[ state.lua: what a breaker looks like now, without changing it.
KEYS, ARGV[1..5]: see common.lua. No arguments of its own. Writes nothing: a pending move (open
time up, a lapsed trial lease, an expired mode) shows in the figures and happens at the next
acquire or report.
Returns a flat array of field, value pairs (all strings):
  exists, state, mode, gen, calls, failures, slow, failure_rate, slow_rate, trials, permits,
  retry_after_ms, opens, open_until, mode_by, mode_why, mode_at, mode_until ]]

policy(true)
local exists = S.fresh and 0 or 1
if S.mode ~= 'auto' and S.mode_until > 0 and now >= S.mode_until then
  if S.mode == 'forced_open' then S.open_until = now end
  S.mode = 'auto'
end

-- The window's figures as of now: buckets that have fallen out since the last report don't count.
local calls, fails, slows = S.calls, S.fails, S.slows
if S.nb ~= S.buckets or S.bms ~= S.bucket_ms or S.idx - S.head >= S.buckets then
  calls, fails, slows = 0, 0, 0
elseif S.idx > S.head and calls > 0 then
  local c, f, w = lib().fallen_buckets()
  calls, fails, slows = calls - c, fails - f, slows - w
end
if S.state ~= 'closed' then calls, fails, slows = 0, 0, 0 end

local trials = 0
if S.state == 'half_open' then
  trials = redis.call('ZCOUNT', K_TRIALS, '(' .. string.format('%d', now - S.permit_ttl_ms), '+inf')
end

local retry = 0
if S.mode == 'forced_open' or S.state ~= 'closed' then
  if S.state == 'half_open' and trials < S.half_open_permits then retry = 0 else retry = lib().retry_after() end
end

local function rate(n, d)
  if d == 0 then return '0' end
  return string.format('%.4g', n / d)
end

return {
  'exists', tostring(exists), 'state', S.state, 'mode', S.mode, 'gen', tostring(S.gen),
  'calls', tostring(calls), 'failures', tostring(fails), 'slow', tostring(slows),
  'failure_rate', rate(fails, calls), 'slow_rate', rate(slows, calls),
  'trials', tostring(trials), 'permits', tostring(S.half_open_permits),
  'retry_after_ms', tostring(retry), 'opens', tostring(S.opens), 'open_until', tostring(S.open_until),
  'mode_by', S.mode_by or '', 'mode_why', S.mode_why or '', 'mode_at', tostring(S.mode_at or 0),
  'mode_until', tostring(S.mode_until or 0),
}
"""#

    static let controlLua = #"""
--[[ control.lua: an operator's action on one breaker, recorded in its history with who and why.
KEYS, ARGV[1..5]: see common.lua.
  ARGV[6] action: force | reset | config
  ARGV[7] actor: who asked (free text without spaces, e.g. admin@127.0.0.1:50312/ops-console)
  ARGV[8] why: the operator's reason, or ''
  force:  ARGV[9] mode (auto | forced_open | forced_closed | metrics_only), ARGV[10] ttl ms (0: none)
  reset:  nothing more. Back to closed and auto, with an empty window and no backoff.
  config: ARGV[9..] key, value pairs of policy overrides ('' removes an override); the store has
          validated them.
Returns { 'OK', state, mode, gen, event... } ]]

local action, actor, why = ARGV[6], ARGV[7], ARGV[8]
local who = ' by=' .. actor
if why ~= '' then who = who .. ' why=' .. why end

local X = lib()
X.expire_mode()

if action == 'force' then
  local new_mode, ttl = ARGV[9], tonumber(ARGV[10])
  if new_mode == 'auto' then
    if S.mode ~= 'auto' then X.leave_mode('mode_auto', who) end
  else
    local untl = 0
    if ttl > 0 then untl = now + ttl end
    redis.call('HSET', K_CONF, 'mode', new_mode, 'mode_by', actor, 'mode_why', why, 'mode_at', now, 'mode_until', untl)
    local was = S.mode
    S.mode, S.mode_by, S.mode_why, S.mode_at, S.mode_until = new_mode, actor, why, now, untl
    local figures = 'mode=' .. was .. '->' .. new_mode .. ' ttl_ms=' .. ttl .. who
    if new_mode == 'forced_open' and S.state ~= 'open' then
      policy(true)
      S.open_until = now + (ttl > 0 and ttl or S.open_ms)
      X.clear_window()
      redis.call('DEL', K_TRIALS)
      X.transition('open', 'forced_open', figures)
    elseif new_mode == 'forced_closed' and S.state ~= 'closed' then
      X.close_breaker('forced_closed', figures)
    else
      X.note(new_mode, figures)
    end
  end
elseif action == 'reset' then
  X.clear_mode()
  X.close_breaker('reset', string.sub(who, 2))
elseif action == 'config' then
  local set, del, shown = {}, {}, {}
  for i = 9, #ARGV, 2 do
    local k, v = ARGV[i], ARGV[i + 1]
    if v == '' then del[#del + 1] = k else set[#set + 1] = k; set[#set + 1] = v end
    shown[#shown + 1] = k .. '=' .. (v == '' and 'default' or v)
  end
  if #set > 0 then redis.call('HSET', K_CONF, unpack(set)) end
  if #del > 0 then redis.call('HDEL', K_CONF, unpack(del)) end
  X.settings_changed()
  X.note('config', 'set=' .. table.concat(shown, ',') .. who)
else
  return redis.error_reply('BAD_ACTION ' .. action)
end

if action == 'force' then X.settings_changed() end
return finish({ 'OK', S.state, S.mode, S.gen })
"""#

    /// The script an earlier store loaded for `operation` (acquire, report, fold, state, control).
    static func script(_ operation: String) -> String {
        let body = [
            "acquire": acquireLua, "report": reportLua, "fold": foldLua, "state": stateLua, "control": controlLua,
        ][operation]!
        return commonLua + "\n" + body
    }
}
