--[[ common.lua: the part every breaker script shares. The store prepends it to acquire.lua,
report.lua, state.lua and control.lua, so each still runs as one atomic script.

KEYS (one breaker; all under its hash tag {name}, so each script runs on one Cluster slot)
  KEYS[1] state        hash: state, gen, seq, head, calls, fails, slows, nb, bms, open_until, opens,
                       oks, and the window's buckets c<i>, f<i>, w<i> (calls, failures, slow calls)
  KEYS[2] outstanding  zset: permit sequence number -> acquire time (ms)
  KEYS[3] trials       zset: half-open trial permit sequence number -> acquire time (ms)
  KEYS[4] history      list: event lines, newest first, capped
  KEYS[5] config       hash: policy overrides and the operator's mode (mode, mode_by, mode_why,
                       mode_at, mode_until); the only key that does not expire when idle
ARGV
  ARGV[1]      now in unix ms, or '' to use Redis's own clock (production always passes '')
  ARGV[2..13]  default policy: window_ms, buckets, failure_rate, min_calls, slow_call_ms,
               slow_call_rate, open_ms, open_backoff, max_open_ms, half_open_permits,
               success_threshold, permit_ttl_ms (ms, counts, rates 0..1)
  ARGV[14]     idle ttl (ms): state, outstanding, trials and history expire after this long unused
  ARGV[15]     history cap (entries)
  ARGV[16]     events channel; every event is also published on <channel>:<name>
  ARGV[17]     the breaker's name, for event lines
  ARGV[18..]   the operation's own arguments
A permit is '<gen>.<seq>.<ms>': the generation it was issued in, its sequence number and when it
was issued (Redis's clock). ]]

local K_STATE, K_OUT, K_TRIALS, K_HIST, K_CONF = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local P = {
  window_ms = tonumber(ARGV[2]), buckets = tonumber(ARGV[3]), failure_rate = tonumber(ARGV[4]),
  min_calls = tonumber(ARGV[5]), slow_call_ms = tonumber(ARGV[6]), slow_call_rate = tonumber(ARGV[7]),
  open_ms = tonumber(ARGV[8]), open_backoff = tonumber(ARGV[9]), max_open_ms = tonumber(ARGV[10]),
  half_open_permits = tonumber(ARGV[11]), success_threshold = tonumber(ARGV[12]),
  permit_ttl_ms = tonumber(ARGV[13]),
}
local idle_ttl = tonumber(ARGV[14])
local history_max = tonumber(ARGV[15])
local channel = ARGV[16]
local name = ARGV[17]

local B, bucket_ms, idx, slot
local function window_geometry()
  B = P.buckets
  bucket_ms = math.floor(P.window_ms / B)
  idx = math.floor(now / bucket_ms)
  slot = idx % B
end
window_geometry()

-- One read of the state hash. The current bucket's fields are read with it, for the default
-- window; a breaker whose operator changed the window reads them again below.
local FIELDS = { 'state', 'gen', 'seq', 'head', 'calls', 'fails', 'slows', 'nb', 'bms', 'open_until',
  'opens', 'oks', 'cf', 'ex' }
local S = {}
do
  local r = redis.call('HMGET', K_STATE, 'state', 'gen', 'seq', 'head', 'calls', 'fails', 'slows',
    'nb', 'bms', 'open_until', 'opens', 'oks', 'cf', 'ex', 'c' .. slot, 'f' .. slot, 'w' .. slot)
  S.state = r[1] or 'closed'
  for i = 2, 14 do S[FIELDS[i]] = tonumber(r[i] or 0) end
  S.sc, S.sf, S.sw = tonumber(r[15] or 0), tonumber(r[16] or 0), tonumber(r[17] or 0)
  S.fresh = not r[4]
end

local dirty = {}
local events = {}

-- The operator's settings (policy overrides and mode) live in their own key, read only when the
-- state says there are some ('cf'), or when the state is new (it may have expired while the
-- settings stayed).
local M = { mode = 'auto', by = '', why = '', at = 0, untl = 0 }
if S.fresh or S.cf == 1 then
  local conf = redis.call('HGETALL', K_CONF)
  for i = 1, #conf, 2 do
    local k, v = conf[i], conf[i + 1]
    if P[k] ~= nil then P[k] = tonumber(v)
    elseif k == 'mode' then M.mode = v
    elseif k == 'mode_by' then M.by = v
    elseif k == 'mode_why' then M.why = v
    elseif k == 'mode_at' then M.at = tonumber(v)
    elseif k == 'mode_until' then M.untl = tonumber(v) end
  end
  local cf = (#conf > 0) and 1 or 0
  if cf ~= S.cf then S.cf = cf; dirty.cf = true end
  local old_slot, old_bucket_ms = slot, bucket_ms
  window_geometry()
  if slot ~= old_slot or bucket_ms ~= old_bucket_ms then
    local v = redis.call('HMGET', K_STATE, 'c' .. slot, 'f' .. slot, 'w' .. slot)
    S.sc, S.sf, S.sw = tonumber(v[1] or 0), tonumber(v[2] or 0), tonumber(v[3] or 0)
  end
end
if S.fresh then
  -- A new breaker stores where its window starts, or the next call would start it again.
  S.head, S.nb, S.bms = idx, B, bucket_ms
  dirty.head, dirty.nb, dirty.bms = true, true, true
end

local function mark(...)
  for _, f in ipairs({ ... }) do dirty[f] = true end
end

-- Empties the window: totals to zero, every bucket gone.
local function clear_window()
  if S.calls > 0 then
    local del = {}
    for i = 0, S.nb - 1 do
      del[#del + 1] = 'c' .. i; del[#del + 1] = 'f' .. i; del[#del + 1] = 'w' .. i
    end
    redis.call('HDEL', K_STATE, unpack(del))
  end
  -- A bucket this call already counted into goes too.
  for f in pairs(dirty) do
    if string.match(f, '^[cfw]%d+$') then dirty[f] = nil end
  end
  S.calls, S.fails, S.slows = 0, 0, 0
  S.sc, S.sf, S.sw = 0, 0, 0
  S.head, S.nb, S.bms = idx, B, bucket_ms
  mark('calls', 'fails', 'slows', 'head', 'nb', 'bms')
end

-- The buckets that fell out of the window since the last report (those after the stored head, up
-- to now): their field names and what they held. At most B buckets, and only once time has moved
-- into a new bucket, so no call sums the whole window.
local function fallen_buckets()
  local names = {}
  for i = S.head + 1, idx do
    local s = i % B
    names[#names + 1] = 'c' .. s; names[#names + 1] = 'f' .. s; names[#names + 1] = 'w' .. s
  end
  local v = redis.call('HMGET', K_STATE, unpack(names))
  local c, f, w = 0, 0, 0
  for j = 1, #names, 3 do
    c = c + tonumber(v[j] or 0)
    f = f + tonumber(v[j + 1] or 0)
    w = w + tonumber(v[j + 2] or 0)
  end
  return names, c, f, w
end

-- Drops the buckets that fell out of the window since the last report.
local function advance_window()
  if S.nb ~= B or S.bms ~= bucket_ms then clear_window(); return end
  if idx <= S.head then return end
  if S.calls == 0 or idx - S.head >= B then clear_window(); return end
  local names, c, f, w = fallen_buckets()
  S.calls, S.fails, S.slows = S.calls - c, S.fails - f, S.slows - w
  redis.call('HDEL', K_STATE, unpack(names))
  -- The current bucket was among those dropped: it starts empty.
  S.sc, S.sf, S.sw = 0, 0, 0
  S.head = idx
  mark('calls', 'fails', 'slows', 'head')
end

local function event_line(from, to, reason, figures)
  local line = name .. ' ' .. from .. '->' .. to .. ' gen=' .. S.gen .. ' at=' .. now .. ' reason=' .. reason
  if figures ~= '' then line = line .. ' ' .. figures end
  return line
end

local function transition(to, reason, figures)
  local from = S.state
  S.gen = S.gen + 1
  S.state = to
  mark('state', 'gen')
  events[#events + 1] = event_line(from, to, reason, figures)
end

-- An event that is not a transition (a mode set or lifted, a config change): no new generation.
local function note(reason, figures)
  events[#events + 1] = event_line(S.state, S.state, reason, figures)
end

local function open_breaker(reason, figures)
  S.opens = S.opens + 1
  -- Multiplied step by step, exactly as BreakerPolicy.openDuration does.
  local d = P.open_ms
  local i = 1
  while i < S.opens and d < P.max_open_ms do d = d * P.open_backoff; i = i + 1 end
  if d > P.max_open_ms then d = P.max_open_ms end
  d = math.floor(d)
  S.open_until = now + d
  S.oks = 0
  mark('opens', 'open_until', 'oks')
  clear_window()
  redis.call('DEL', K_TRIALS)
  transition('open', reason, figures .. ' open_ms=' .. d .. ' opens=' .. S.opens)
end

local function close_breaker(reason, figures)
  S.opens, S.oks, S.open_until = 0, 0, 0
  mark('opens', 'oks', 'open_until')
  clear_window()
  redis.call('DEL', K_TRIALS)
  transition('closed', reason, figures)
end

local function half_open(reason, figures)
  S.oks = 0
  mark('oks')
  redis.call('DEL', K_TRIALS)
  transition('half_open', reason, figures)
end

-- A trial whose lease ran out unreported is a failed trial.
local function sweep_trials()
  if S.state ~= 'half_open' then return end
  local expired = redis.call('ZRANGEBYSCORE', K_TRIALS, '-inf', now - P.permit_ttl_ms, 'LIMIT', 0, 1)
  if #expired > 0 then
    open_breaker('trial_expired', 'permit=' .. S.gen .. '.' .. expired[1] .. ' permit_ttl_ms=' .. P.permit_ttl_ms)
  end
end

-- Called after an operator changed the settings key: whether it still holds anything.
local function settings_changed()
  S.cf = redis.call('EXISTS', K_CONF)
  dirty.cf = true
end

local function clear_mode()
  redis.call('HDEL', K_CONF, 'mode', 'mode_by', 'mode_why', 'mode_at', 'mode_until')
  M.mode, M.by, M.why, M.at, M.untl = 'auto', '', '', 0, 0
  settings_changed()
end

-- Back to auto. After a forced open the breaker stays open with its time up, so the next acquire
-- goes half-open and trials test the dependency before traffic returns.
local function leave_mode(reason, figures)
  local was = M.mode
  clear_mode()
  if was == 'forced_open' and S.state == 'open' then
    S.open_until = now
    mark('open_until')
  end
  note(reason, 'mode=' .. was .. '->auto' .. figures)
end

local function expire_mode()
  if M.mode ~= 'auto' and M.untl > 0 and now >= M.untl then leave_mode('mode_expired', '') end
end

-- The state machine runs in auto and metrics_only; forced modes freeze it.
local function machine_runs()
  return M.mode == 'auto' or M.mode == 'metrics_only'
end

-- How long a denied caller should wait before asking again.
local function retry_after()
  if M.mode == 'forced_open' then
    if M.untl > 0 then return math.max(1, M.untl - now) end
    return P.open_ms
  end
  if S.state == 'open' then return math.max(0, S.open_until - now) end
  if S.state == 'half_open' then
    local first = redis.call('ZRANGE', K_TRIALS, 0, 0, 'WITHSCORES')
    if #first == 2 then return math.max(1, tonumber(first[2]) + P.permit_ttl_ms - now) end
  end
  return 0
end

-- Writes what changed, publishes and records the events, and keeps the breaker's keys alive.
-- The idle expiry is refreshed when a sixteenth of it has passed, not on every call.
local function finish()
  if S.fresh or now - S.ex >= idle_ttl / 16 then
    S.ex = now
    dirty.ex = true
    S.refresh = true
  end
  local args = {}
  for f in pairs(dirty) do
    args[#args + 1] = f
    args[#args + 1] = S[f]
  end
  if #args > 0 then redis.call('HSET', K_STATE, unpack(args)) end
  if S.refresh then redis.call('PEXPIRE', K_STATE, idle_ttl) end
  if #events > 0 then
    redis.call('LPUSH', K_HIST, unpack(events))
    redis.call('LTRIM', K_HIST, 0, history_max - 1)
    redis.call('PEXPIRE', K_HIST, idle_ttl)
    for _, e in ipairs(events) do
      redis.call('PUBLISH', channel, e)
      redis.call('PUBLISH', channel .. ':' .. name, e)
    end
  end
end

-- Appends the events of this call to a reply, so the caller can log and count them.
local function with_events(reply)
  for _, e in ipairs(events) do reply[#reply + 1] = e end
  return reply
end
