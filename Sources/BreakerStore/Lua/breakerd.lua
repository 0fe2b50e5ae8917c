#!lua name=breakerd_v2
--[[ breakerd.lua: the breaker rules as one Redis Functions library (Redis 7.0 or newer).

The store loads it with FUNCTION LOAD REPLACE and calls its functions with FCALL (FCALL_RO for
breakerd_v2_state). Redis runs this file once, at load: it only defines local functions and
registers five of them. A call runs only the function it names, so nothing here is rebuilt per call.
The library's name carries its version: a breakerd that changes what a function takes or answers
ships breakerd_v3 with functions breakerd_v3_*, which loads beside this one, so processes of both
versions can run against one Redis during a deploy (see docs/ENGINE.md, "Upgrading a fleet").

Every function works on one breaker; all its keys share the hash tag {name}, so a call touches
one Cluster slot, and every key it touches is passed in KEYS.

KEYS
  KEYS[1] state        string: the state record (below)
  KEYS[2] outstanding  zset: permit sequence number -> acquire time (ms)
  KEYS[3] trials       zset: half-open trial permit sequence number -> acquire time (ms)
  KEYS[4] history      list: event lines, newest first, capped
  KEYS[5] config       hash: policy overrides and the operator's mode (mode, mode_by, mode_why,
                       mode_at, mode_until); the only key that does not expire when idle
  KEYS[6] folds        zset, breakerd_v2_fold only: fold ids applied lately (see there)
ARGV (every function)
  ARGV[1]   now in unix ms, or '' to use Redis's own clock (production always passes '')
  ARGV[2]   default policy: one text of twelve space-separated values, in this order: window_ms,
            buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate, open_ms, open_backoff,
            max_open_ms, half_open_permits, success_threshold, permit_ttl_ms (ms, counts, rates 0..1)
  ARGV[3]   '<idle ttl ms> <history cap>': state, outstanding, trials and history expire after the
            idle ttl unused; the history keeps history cap entries
  ARGV[4]   events channel; every event is also published on <channel>:<name>
  ARGV[5]   the breaker's name, for event lines
  ARGV[6..] the function's own arguments
A permit is '<gen>.<seq>.<ms>': the generation it was issued in, its sequence number and when it
was issued (Redis's clock).

REPLIES: every function answers one text, its fields separated by a line feed ('\n'); no field
holds one (names, actors, reasons and event lines are kept free of them). Numbers are written
as whole decimal numbers. A text costs Redis far less to hand back than an array (measured:
about 7,000 instructions less for five fields), as Redis checks every table a function returns
for its marker fields (an error, a status, ...) and then converts each element.

THE STATE RECORD (KEYS[1]), layout 2: one binary string of little-endian doubles (struct '<d').
This table is the only description of it; the constants below name its offsets.

  offset  bytes  field        meaning
  0       8      seq          the last permit sequence number issued
  8       8      on           how many permits the outstanding zset holds
  16      8      calls        the window's total calls
  24      8      fails        the window's total failures
  32      8      slows        the window's total slow calls
  40      8      bc           the current bucket's calls
  48      8      bf           the current bucket's failures
  56      8      bw           the current bucket's slow calls
  64      8      state        0 closed, 1 open, 2 half_open
  72      8      gen          generation: bumped by every transition
  80      8      head         the current bucket's number (now / bucket length)
  88      8      nb           the bucket count the window was laid out with
  96      8      bms          the bucket length (ms) the window was laid out with
  104     8      open_until   when an open breaker may go half-open (unix ms)
  112     8      opens        consecutive openings without a close (drives the backoff)
  120     8      oks          successful trials so far
  128     8      cf           1 when the config key holds anything
  136     8      ex           when the idle expiry was last refreshed (unix ms)
  144     56     policy       the default policy's values the common paths use, as last parsed:
                              window_ms, buckets, failure_rate, min_calls, slow_call_ms,
                              slow_call_rate, permit_ttl_ms (7 doubles)
  200     128    policy text  the text they were parsed from (ARGV[2]), ended by a zero byte;
                              all 184 policy bytes are zero when that text is 128 bytes or more
  328     24*nb  ring         bucket slot i at 328 + 24 * i: calls, failures, slow calls; a slot
                              past the string's end is an empty bucket

The current bucket's counts live in the header (bc, bf, bw): a counted call rewrites only on..bw,
a permit only seq and on. The ring holds the window's other buckets at (bucket number % nb); it
is written when time moves on to a new bucket. While ARGV[2] is the text kept at offset 200, the
policy values are read from the record instead of parsed.

Layouts: layout 1 was a hash (fields state, gen, ..., c<i>, f<i>, w<i>); layout 2 is this string.
The key's type tells them apart, so nothing is probed: the one GETRANGE every call makes returns
the record, or WRONGTYPE for a hash, and only then is the hash read and migrated, once: the next
write replaces it. breakerd before this library (EVALSHA scripts) wrote the same layout 2, so both
can share breakers during a deploy.

Cost: a call runs only its function. The common cases (a permit of a closed breaker, a deny of
an open one, a report counted in the current bucket that does not trip it) have fast paths that
read the header into locals, check every condition before the first write and do exactly what
the general path would, in four Redis calls (TIME, GETRANGE, the permit's ZADD or ZREM, one
SETRANGE). The general path keeps the breaker in one table per call (S) handed to the helpers.
Numbers are made from text by arithmetic (s + 0), not tonumber; no number is handed to redis.call
(Redis would format it); replies are one text (REPLIES). Redis does not let the library's body
touch string, struct or math at load, so the constants here are literals. ]]

-- Offsets of the record (see the table above), as the text GETRANGE and SETRANGE take.
local AT_SEQ = '0'         -- seq, on
local AT_ON = '8'          -- on .. bw
local AT_POLICY = '144'    -- the policy block (values, then text)
local HEAD_LAST = '327'    -- the last byte of header and policy block
local AT_RING = '328'
local HEAD_FIRST_LAST = '143'  -- the last byte of the header alone
local HEAD_BYTES = 328     -- header and policy block
local POLICY_TEXT = 201    -- 1-based position of the policy text in the record
local HEADER = '<dddddddddddddddddd'   -- the 18 header fields, seq .. ex
local POLICY = '<ddddddd'              -- the policy block's 7 values
local BUCKET = '<ddd'
local ZERO8 = '\0\0\0\0\0\0\0\0'
local ZERO_BUCKET = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'
local ZERO32 = '\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0'

local CODE = { closed = 0, open = 1, half_open = 2 }
local STATE = { [0] = 'closed', [1] = 'open', [2] = 'half_open' }

-- How long a fold id is remembered (ms): a retried fold arrives well within it.
local FOLD_MEMORY_MS = 120000
-- A fold's effect, kept in the fold id's score beside the time: score = time * 4 + code.
local EFFECT_CODE = { counted = 0, stale = 1, not_counted = 2 }
local EFFECT = { [0] = 'counted', [1] = 'stale', [2] = 'not_counted' }

-- The breaker in layout 1 (a hash), as a layout 2 header and ring (the current bucket in the
-- header, its ring slot empty); '' when the hash holds no breaker.
local function read_hash_layout(keys)
  local h = redis.call('HGETALL', keys[1])
  local f = {}
  for i = 1, #h, 2 do f[h[i]] = tonumber(h[i + 1]) or h[i + 1] end
  if not f.head then return '', nil end
  local function n(k) return f[k] or 0 end
  local nb, head = n('nb'), n('head')
  local cur = nb > 0 and head % nb or 0
  local parts = {}
  for i = 0, nb - 1 do
    if i == cur then parts[#parts + 1] = ZERO_BUCKET
    else parts[#parts + 1] = struct.pack(BUCKET, n('c' .. i), n('f' .. i), n('w' .. i)) end
  end
  local raw = struct.pack(HEADER, n('seq'), redis.call('ZCARD', keys[2]), n('calls'), n('fails'),
    n('slows'), n('c' .. cur), n('f' .. cur), n('w' .. cur), CODE[f.state] or 0, n('gen'), head, nb, n('bms'),
    n('open_until'), n('opens'), n('oks'), n('cf'), n('ex'))
  return raw, table.concat(parts)
end

-- The breaker as its record holds it, for one call: S. S.k and S.a are the call's KEYS and ARGV,
-- S.now the time (now, when the caller has it already, else ARGV[1] or Redis's clock); S.raw the record's first 328 bytes; S.changed whether anything changed, S.hot
-- whether only seq and on ('seq') or only on..bw (true) did; the policy's fields once policy(S)
-- has run.
local policy
local function load(keys, args, now)
  if not now then
    local t = args[1]
    if t ~= '' then
      now = t + 0
    else
      t = redis.call('TIME')
      now = t[1] * 1000 + math.floor(t[2] / 1000)
    end
  end
  local raw = redis.pcall('GETRANGE', keys[1], '0', HEAD_LAST)
  local ring
  if type(raw) == 'table' then raw, ring = read_hash_layout(keys) end
  local S
  if raw == '' then
    S = { k = keys, a = args, now = now, fresh = true, state = 'closed', gen = 0, seq = 0, on = 0, calls = 0,
      fails = 0, slows = 0, bc = 0, bf = 0, bw = 0, head = 0, nb = 0, bms = 0, open_until = 0, opens = 0, oks = 0,
      cf = 0, ex = 0, mode = 'auto', raw = raw, changed = true }
  else
    local seq, on, calls, fails, slows, bc, bf, bw, code, gen, head, nb, bms, open_until, opens, oks, cf, ex =
      struct.unpack(HEADER, raw)
    S = { k = keys, a = args, now = now, fresh = false, state = STATE[code], gen = gen, seq = seq, on = on,
      calls = calls, fails = fails, slows = slows, bc = bc, bf = bf, bw = bw, head = head, nb = nb, bms = bms,
      open_until = open_until, opens = opens, oks = oks, cf = cf, ex = ex, mode = 'auto', raw = raw }
  end
  if ring then
    -- Migrated from layout 1: the next write replaces the hash.
    S.ring, S.ring_changed, S.changed = ring, true, true
  end
  -- The operator's settings (policy overrides and mode) live in their own key, read only when the
  -- state says there are some (cf), or when the state is new (it may have expired while the
  -- settings stayed).
  if S.fresh or S.cf == 1 then
    local conf = redis.call('HGETALL', keys[5])
    S.mode_by, S.mode_why, S.mode_at, S.mode_until = '', '', 0, 0
    for i = 1, #conf, 2 do
      local k, v = conf[i], conf[i + 1]
      if k == 'mode' then S.mode = v
      elseif k == 'mode_by' then S.mode_by = v
      elseif k == 'mode_why' then S.mode_why = v
      elseif k == 'mode_at' then S.mode_at = tonumber(v)
      elseif k == 'mode_until' then S.mode_until = tonumber(v) end
    end
    local c = (#conf > 0) and 1 or 0
    if c ~= S.cf then S.cf = c; S.changed = true end
    if #conf > 0 then S.conf = conf end
  end
  if S.fresh then
    -- A new breaker stores where its window starts, or the next call would start it again.
    policy(S)
    S.head, S.nb, S.bms = S.idx, S.buckets, S.bucket_ms
  end
  return S
end

-- The policy, as fields of S: the default (ARGV[2]) with the breaker's overrides, and the window's
-- geometry under it (buckets of bucket_ms; idx the current bucket's number). policy(S) gives what
-- the common paths use (window_ms, buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate,
-- permit_ttl_ms); policy(S, true) all of it (open_ms, open_backoff, max_open_ms, half_open_permits,
-- success_threshold too). The first seven come from the record while ARGV[2] is the text they were
-- parsed from, else from ARGV[2], and the record keeps them for next time (S.pcache).
policy = function(S, all)
  local first = not S.idx
  if first then
    local text, raw = S.a[2], S.raw
    local n = #text
    if n < 128 and #raw >= HEAD_BYTES and string.find(raw, text, POLICY_TEXT, true) == POLICY_TEXT
      and string.byte(raw, POLICY_TEXT + n) == 0 then
      S.window_ms, S.buckets, S.failure_rate, S.min_calls, S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms =
        struct.unpack(POLICY, raw, 145)
    else
      local a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 = string.match(text,
        '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
      S.window_ms, S.buckets, S.failure_rate, S.min_calls, S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms =
        a1 + 0, a2 + 0, a3 + 0, a4 + 0, a5 + 0, a6 + 0, a12 + 0
      S.open_ms, S.open_backoff, S.max_open_ms, S.half_open_permits, S.success_threshold =
        a7 + 0, a8 + 0, a9 + 0, a10 + 0, a11 + 0
      if n < 128 then
        S.pcache = struct.pack(POLICY, S.window_ms, S.buckets, S.failure_rate, S.min_calls,
          S.slow_call_ms, S.slow_call_rate, S.permit_ttl_ms) .. text .. string.sub(string.rep(ZERO32, 4), n + 1)
      end
    end
    if S.conf then all = true end
  end
  if all and not S.open_ms then
    local a7, a8, a9, a10, a11 = string.match(S.a[2], '^%S+ %S+ %S+ %S+ %S+ %S+ (%S+) (%S+) (%S+) (%S+) (%S+) ')
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
    S.idx = math.floor(S.now / S.bucket_ms)
  end
end

-- The ring of buckets, read the first time it is needed.
local function load_ring(S)
  if S.ring == nil then
    if S.fresh then S.ring = '' else S.ring = redis.call('GETRANGE', S.k[1], AT_RING, '-1') end
  end
end

-- Ring slot s: calls, failures, slow calls.
local function ring_bucket(S, s)
  local off = s * 24
  if #S.ring < off + 24 then return 0, 0, 0 end
  local c, f, w = struct.unpack(BUCKET, S.ring, off + 1)
  return c, f, w
end

-- Writes bytes (whole buckets) into the ring from slot s on, wrapping past its end.
local function ring_put(S, s, bytes)
  local ring = S.ring
  local len = S.buckets * 24
  -- A ring not laid out for this window holds only empty buckets (see clear_window).
  if #ring ~= len then ring = string.rep(ZERO_BUCKET, S.buckets) end
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
local function clear_window(S)
  policy(S)
  if S.calls > 0 then S.ring, S.ring_changed = '', true end
  S.calls, S.fails, S.slows, S.bc, S.bf, S.bw = 0, 0, 0, 0, 0, 0
  S.head, S.nb, S.bms = S.idx, S.buckets, S.bucket_ms
  S.changed = true
end

-- What the buckets that fell out of the window since the last report held (those after head,
-- up to now: fewer than B, and only once time has moved into a new bucket).
local function fallen_buckets(S)
  load_ring(S)
  local c, f, w = 0, 0, 0
  for i = S.head + 1, S.idx do
    local a, b, d = ring_bucket(S, i % S.buckets)
    c, f, w = c + a, f + b, w + d
  end
  return c, f, w
end

-- Drops the buckets that fell out of the window since the last report; the current bucket's
-- counts move from the header into the ring.
local function advance_window(S)
  policy(S)
  local B, idx = S.buckets, S.idx
  if S.nb ~= B or S.bms ~= S.bucket_ms then clear_window(S); return end
  if idx <= S.head then return end
  if S.calls == 0 or idx - S.head >= B then clear_window(S); return end
  local c, f, w = fallen_buckets(S)
  S.calls, S.fails, S.slows = S.calls - c, S.fails - f, S.slows - w
  ring_put(S, S.head % B, struct.pack(BUCKET, S.bc, S.bf, S.bw) .. string.rep(ZERO_BUCKET, idx - S.head))
  S.bc, S.bf, S.bw = 0, 0, 0
  S.head = idx
end

local function event_line(S, from, to, reason, figures)
  local line = S.a[5] .. ' ' .. from .. '->' .. to .. ' gen=' .. S.gen .. ' at=' .. S.now .. ' reason=' .. reason
  if figures ~= '' then line = line .. ' ' .. figures end
  if S.events then S.events[#S.events + 1] = line else S.events = { line } end
end

local function transition(S, to, reason, figures)
  local from = S.state
  S.gen = S.gen + 1
  S.state = to
  S.changed = true
  event_line(S, from, to, reason, figures)
end

-- An event that is not a transition (a mode set or lifted, a config change): no new generation.
local function note(S, reason, figures)
  event_line(S, S.state, S.state, reason, figures)
end

local function open_breaker(S, reason, figures)
  policy(S, true)
  S.opens = S.opens + 1
  -- Multiplied step by step, exactly as BreakerPolicy.openDuration does.
  local d = S.open_ms
  local i = 1
  while i < S.opens and d < S.max_open_ms do d = d * S.open_backoff; i = i + 1 end
  if d > S.max_open_ms then d = S.max_open_ms end
  d = math.floor(d)
  S.open_until = S.now + d
  S.oks = 0
  clear_window(S)
  redis.call('DEL', S.k[3])
  transition(S, 'open', reason, figures .. ' open_ms=' .. d .. ' opens=' .. S.opens)
end

local function close_breaker(S, reason, figures)
  S.opens, S.oks, S.open_until = 0, 0, 0
  clear_window(S)
  redis.call('DEL', S.k[3])
  transition(S, 'closed', reason, figures)
end

local function half_open(S, reason, figures)
  S.oks = 0
  redis.call('DEL', S.k[3])
  transition(S, 'half_open', reason, figures)
end

-- A trial whose lease ran out unreported is a failed trial.
local function sweep_trials(S)
  if S.state ~= 'half_open' then return end
  policy(S)
  local expired = redis.call('ZRANGEBYSCORE', S.k[3], '-inf', string.format('%d', S.now - S.permit_ttl_ms),
    'LIMIT', '0', '1')
  if #expired > 0 then
    open_breaker(S, 'trial_expired', 'permit=' .. S.gen .. '.' .. expired[1] .. ' permit_ttl_ms=' .. S.permit_ttl_ms)
  end
end

-- Called after an operator changed the settings key: whether it still holds anything.
local function settings_changed(S)
  S.cf = redis.call('EXISTS', S.k[5])
  S.changed = true
end

local function clear_mode(S)
  redis.call('HDEL', S.k[5], 'mode', 'mode_by', 'mode_why', 'mode_at', 'mode_until')
  S.mode, S.mode_by, S.mode_why, S.mode_at, S.mode_until = 'auto', '', '', 0, 0
  settings_changed(S)
end

-- Back to auto. After a forced open the breaker stays open with its time up, so the next
-- acquire goes half-open and trials test the dependency before traffic returns.
local function leave_mode(S, reason, figures)
  local was = S.mode
  clear_mode(S)
  if was == 'forced_open' and S.state == 'open' then
    S.open_until = S.now
  end
  note(S, reason, 'mode=' .. was .. '->auto' .. figures)
end

local function expire_mode(S)
  if S.mode ~= 'auto' and S.mode_until > 0 and S.now >= S.mode_until then leave_mode(S, 'mode_expired', '') end
end

-- How long a denied caller should wait before asking again.
local function retry_after(S)
  local now = S.now
  if S.mode == 'forced_open' then
    if S.mode_until > 0 then return math.max(1, S.mode_until - now) end
    policy(S, true)
    return S.open_ms
  end
  if S.state == 'open' then return math.max(0, S.open_until - now) end
  if S.state == 'half_open' then
    policy(S)
    local first = redis.call('ZRANGE', S.k[3], '0', '0', 'WITHSCORES')
    if #first == 2 then return math.max(1, first[2] + S.permit_ttl_ms - now) end
  end
  return 0
end

-- Adds outcomes (c calls, f failures, w slow calls) to the window's current bucket and its
-- totals, dropping the buckets that left the window first, then checks the trip rule once: with
-- at least min_calls in the window, a failure rate or (when slow_call_ms is set) a slow rate at its
-- threshold opens the breaker. False, counting nothing, when Redis's clock stepped back past the
-- window, so no bucket can take them.
local function count_outcomes(S, c, f, w)
  policy(S)
  local idx = S.idx
  if idx > S.head or S.nb ~= S.buckets or S.bms ~= S.bucket_ms then advance_window(S) end
  if idx < S.head then
    -- Redis's clock stepped back: a bucket still in the window takes them, an older one cannot.
    if S.head - idx >= S.buckets then return false end
    load_ring(S)
    local s = idx % S.buckets
    local a, b, d = ring_bucket(S, s)
    ring_put(S, s, struct.pack(BUCKET, a + c, b + f, d + w))
  else
    S.bc, S.bf, S.bw = S.bc + c, S.bf + f, S.bw + w
  end
  local calls, fails, slows = S.calls + c, S.fails + f, S.slows + w
  S.calls, S.fails, S.slows, S.hot = calls, fails, slows, true
  if calls >= S.min_calls then
    local fr = fails / calls
    local sr = slows / calls
    if fr >= S.failure_rate then
      open_breaker(S, 'failure_rate', string.format('failure_rate=%.4g threshold=%.4g calls=%d failures=%d',
        fr, S.failure_rate, calls, fails))
    elseif S.slow_call_ms > 0 and sr >= S.slow_call_rate then
      open_breaker(S, 'slow_call_rate', string.format('slow_rate=%.4g threshold=%.4g calls=%d slow=%d slow_call_ms=%d',
        sr, S.slow_call_rate, calls, slows, S.slow_call_ms))
    end
  end
  return true
end

-- Writes what changed, publishes and records the events, keeps the breaker's keys alive, and
-- returns the reply (its fields, then this call's events, so the caller can log and count them)
-- as one text, a line feed between fields (see REPLIES at the top).
-- The idle expiry is refreshed when a sixteenth of it has passed, not on every call: the state
-- record's and the permit zsets' (and the count of outstanding permits is taken again then).
-- Between refreshes a zset gets its expiry from the permit that creates it.
local function finish(S, reply)
  local keys, args, now = S.k, S.a, S.now
  local idle = string.match(args[3], '^%d+')
  local refresh = S.fresh or now - S.ex >= idle / 16
  if refresh then
    S.ex, S.changed = now, true
    S.on = redis.call('ZCARD', keys[2])
    if S.on > 0 then redis.call('PEXPIRE', keys[2], idle) end
    if S.state == 'half_open' then redis.call('PEXPIRE', keys[3], idle) end
  end
  if S.changed then
    local h = struct.pack(HEADER, S.seq, S.on, S.calls, S.fails, S.slows, S.bc, S.bf, S.bw,
      CODE[S.state], S.gen, S.head, S.nb, S.bms, S.open_until, S.opens, S.oks, S.cf, S.ex)
    if S.fresh or S.ring_changed or #S.raw < HEAD_BYTES then
      -- The whole record: header, policy block (as it is, or new, or empty), ring.
      local block = S.pcache
      if not block then
        if #S.raw >= HEAD_BYTES then
          block = string.sub(S.raw, 145, HEAD_BYTES)
        else
          policy(S)
          block = S.pcache or string.rep(ZERO8, 23)
        end
      end
      local record = h .. block .. (S.ring or '')
      if refresh then
        redis.call('SET', keys[1], record, 'PX', idle)
      else
        redis.call('SET', keys[1], record, 'KEEPTTL')
      end
    else
      redis.call('SETRANGE', keys[1], AT_SEQ, h)
      if S.pcache then redis.call('SETRANGE', keys[1], AT_POLICY, S.pcache) end
      if refresh then redis.call('PEXPIRE', keys[1], idle) end
    end
  else
    if S.hot == 'seq' then
      redis.call('SETRANGE', keys[1], AT_SEQ, struct.pack('<dd', S.seq, S.on))
    elseif S.hot then
      redis.call('SETRANGE', keys[1], AT_ON, struct.pack('<ddddddd', S.on, S.calls, S.fails, S.slows, S.bc, S.bf, S.bw))
    end
    if S.pcache then redis.call('SETRANGE', keys[1], AT_POLICY, S.pcache) end
  end
  local events = S.events
  if events then
    redis.call('LPUSH', keys[4], unpack(events))
    redis.call('LTRIM', keys[4], '0', string.match(args[3], '%d+$') - 1)
    redis.call('PEXPIRE', keys[4], idle)
    local channel = args[4]
    for i = 1, #events do
      redis.call('PUBLISH', channel, events[i])
      redis.call('PUBLISH', channel .. ':' .. args[5], events[i])
      reply[#reply + 1] = events[i]
    end
  end
  for i = 1, #reply do
    if type(reply[i]) == 'number' then reply[i] = string.format('%d', reply[i]) end
  end
  return table.concat(reply, '\n')
end

--[[ breakerd_v2_acquire: may this caller call the dependency now?
KEYS[1..5], ARGV[1..5]: see the top. No arguments of its own.
Moves an open breaker whose time is up to half-open, fails trials whose lease ran out, hands out at
most half_open_permits live trial permits across all callers, and honours the operator's mode.
Returns the fields PERMIT, state, permit, 0, gen, event...   (permit: '<gen>.<seq>.<issued ms>')
     or DENY, state, '' (no permit), retry_after_ms, gen, event...   (one per line, see REPLIES)
(events: the lines of any transitions this call made, as published) ]]
local function acquire(keys, args)
  -- The common cases, read from the header alone (without the S table, the policy or finish):
  -- a closed breaker without operator settings whose idle expiry is not due, and an open breaker
  -- without settings whose time is not up. Each does exactly what the general path below would,
  -- every condition checked before the first write; anything else takes the general path.
  -- ms: now as text, as the permit and the outstanding zset's score write it.
  local fmt = string.format
  local ms, now = args[1], nil
  if ms ~= '' then
    now = ms + 0
    ms = fmt('%d', now)
  else
    local t = redis.call('TIME')
    ms = fmt('%s%03d', t[1], t[2] / 1000)
    now = ms + 0
  end
  local head = redis.pcall('GETRANGE', keys[1], '0', HEAD_FIRST_LAST)
  if type(head) == 'string' and #head == 144 then
    local seq, on, _, _, _, _, _, _, code, gen, _, _, _, open_until, _, _, cf, ex = struct.unpack(HEADER, head)
    local idle = string.match(args[3], '^%d+')
    if cf == 0 and now - ex < idle / 16 then
      if code == 0 then
        -- A 16th permit also forgets the permits whose lease ran out, which needs permit_ttl_ms:
        -- from the record's policy block while ARGV[2] is the text kept there.
        local ttl
        seq = seq + 1
        if seq % 16 == 0 then
          local block = redis.call('GETRANGE', keys[1], AT_POLICY, HEAD_LAST)
          local text = args[2]
          if #block == 184 and #text < 128 and string.find(block, text, 57, true) == 57 and string.byte(block, 57 + #text) == 0 then
            local _
            _, _, _, _, _, _, ttl = struct.unpack(POLICY, block)
          end
        end
        if seq % 16 ~= 0 or ttl then
          local s, g = fmt('%d', seq), fmt('%d', gen)
          local added = redis.call('ZADD', keys[2], ms, s)
          if on <= 0 then redis.call('PEXPIRE', keys[2], idle) end
          on = on + added
          if ttl then on = on - redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', fmt('%d', now - ttl)) end
          redis.call('SETRANGE', keys[1], AT_SEQ, struct.pack('<dd', seq, on))
          return 'PERMIT\nclosed\n' .. g .. '.' .. s .. '.' .. ms .. '\n0\n' .. g
        end
      elseif code == 1 and now < open_until then
        return fmt('DENY\nopen\n\n%d\n%d', math.max(0, open_until - now), gen)
      end
    end
  end

  local S = load(keys, args, now)
  if S.mode ~= 'auto' then expire_mode(S) end

  -- Decide: a permit into the outstanding zset ('out'), a trial permit ('trial', with the number
  -- of live trials), or a deny (retry: milliseconds to wait).
  local grant, live, retry
  local mode = S.mode
  if mode == 'forced_open' then
    retry = retry_after(S)
  elseif mode == 'forced_closed' then
    grant = 'out'
  else
    if S.state ~= 'closed' then
      if S.state == 'half_open' then sweep_trials(S) end
      if S.state == 'open' and now >= S.open_until then
        policy(S, true)
        half_open(S, 'open_elapsed', 'permits=' .. S.half_open_permits)
      end
    end
    if S.state == 'closed' then
      grant = 'out'
    else
      if S.state == 'half_open' then
        policy(S, true)
        live = redis.call('ZCARD', keys[3])
        if live < S.half_open_permits then grant = 'trial' end
      end
      if not grant then
        if mode == 'metrics_only' then
          -- Would be denied; metrics_only lets it through as a permit that counts nothing.
          grant = 'out'
        elseif S.state == 'open' then
          retry = math.max(0, S.open_until - now)
        else
          retry = retry_after(S)
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
      redis.call('ZADD', keys[3], t, s)
      if live == 0 then redis.call('PEXPIRE', keys[3], string.match(args[3], '^%d+')) end
    else
      local added = redis.call('ZADD', keys[2], t, s)
      if S.on <= 0 then redis.call('PEXPIRE', keys[2], string.match(args[3], '^%d+')) end
      S.on = S.on + added
      -- Permits not reported within their lease are forgotten (a report checks the lease itself,
      -- so this is only housekeeping, done every 16th permit).
      if seq % 16 == 0 then
        policy(S)
        S.on = S.on - redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', string.format('%d', now - S.permit_ttl_ms))
      end
    end
    reply = { 'PERMIT', S.state, permit, 0, S.gen }
  else
    reply = { 'DENY', S.state, '', retry, S.gen }
  end
  return finish(S, reply)
end

--[[ breakerd_v2_report: the outcome of a call made under a permit.
KEYS[1..5], ARGV[1..5]: see the top.
  ARGV[6] permit, as acquire issued it ('<gen>.<seq>.<issued ms>')
  ARGV[7] outcome: SUCCESS, FAILURE or IGNORE
  ARGV[8] latency in ms, or '' to measure from the acquire on Redis's clock
A permit from an earlier generation never causes a transition; a permit counts once. In closed
state the outcome goes into the current bucket and may trip the breaker; in half-open a failed or
slow trial re-opens it and success_threshold successful trials close it.
Returns the fields OK, state, effect, gen, event... (one per line)
  effect: counted | ignored | stale (earlier generation) | expired (already reported, or its
  lease ran out) | not_counted (a forced mode, or a permit metrics_only let through)
Errors: 'UNKNOWN_PERMIT ...' for a permit this breaker never issued; 'BAD_OUTCOME ...'. ]]
local function report(keys, args)
  local token, outcome, latency_arg = args[6], args[7], args[8]
  if outcome ~= 'SUCCESS' and outcome ~= 'FAILURE' and outcome ~= 'IGNORE' then
    return redis.error_reply('BAD_OUTCOME ' .. tostring(outcome))
  end
  local pgs, member, pt = string.match(token, '^(%d+)%.(%d+)%.(%d+)$')
  if not pgs then return redis.error_reply('UNKNOWN_PERMIT ' .. token) end
  local pg, ps = pgs + 0, member + 0
  pt = pt + 0
  local now, t = nil, args[1]
  if t ~= '' then
    now = t + 0
  else
    t = redis.call('TIME')
    now = t[1] * 1000 + math.floor(t[2] / 1000)
  end

  -- The common case, without the S table or finish: a closed breaker without operator settings,
  -- its idle expiry not due, the policy text the one its record keeps, a permit of the current
  -- generation reported in the window's current bucket, and an outcome that does not trip it.
  -- It does exactly what the general path below would (every condition is checked before the
  -- permit is removed); anything else takes the general path.
  -- The record is read up to the policy text's end: header, policy values, the text and its zero.
  local text = args[2]
  local n = #text
  local raw = n < 128 and redis.pcall('GETRANGE', keys[1], '0', string.format('%d', POLICY_TEXT + n - 1))
  if type(raw) == 'string' and #raw == POLICY_TEXT + n then
    local seq, on, calls, fails, slows, bc, bf, bw, code, gen, head, nb, bms, _, _, _, cf, ex = struct.unpack(HEADER, raw)
    if code == 0 and cf == 0 and pg == gen and ps >= 1 and ps <= seq
      and now - ex < string.match(args[3], '^%d+') / 16
      and string.find(raw, text, POLICY_TEXT, true) == POLICY_TEXT and string.byte(raw, POLICY_TEXT + n) == 0 then
      local window_ms, buckets, failure_rate, min_calls, slow_call_ms, slow_call_rate, permit_ttl_ms =
        struct.unpack(POLICY, raw, 145)
      local bucket_ms = math.floor(window_ms / buckets)
      local acquired = pt
      if now < pt then acquired = now end
      local ms
      if latency_arg ~= '' then ms = latency_arg + 0 else ms = now - acquired end
      local c, f, w = 1, 0, 0
      if outcome == 'FAILURE' then f = 1 elseif outcome == 'IGNORE' then c = 0 end
      if c == 1 and slow_call_ms > 0 and ms >= slow_call_ms then w = 1 end
      local trips = false
      if c == 1 and calls + 1 >= min_calls then
        trips = (fails + f) / (calls + 1) >= failure_rate
          or (slow_call_ms > 0 and (slows + w) / (calls + 1) >= slow_call_rate)
      end
      if not trips and nb == buckets and bms == bucket_ms and math.floor(now / bucket_ms) == head then
        if string.byte(member) == 48 then member = string.format('%d', ps) end
        local effect
        if redis.call('ZREM', keys[2], member) == 1 then
          if acquired <= now - permit_ttl_ms then
            effect = 'expired'
          elseif c == 0 then
            effect = 'ignored'
          else
            effect = 'counted'
            calls, fails, slows, bc, bf, bw = calls + 1, fails + f, slows + w, bc + 1, bf + f, bw + w
          end
          redis.call('SETRANGE', keys[1], AT_ON, struct.pack('<ddddddd', on - 1, calls, fails, slows, bc, bf, bw))
        else
          -- Reported already, or its lease ran out and acquire's housekeeping dropped it.
          effect = 'expired'
        end
        -- The permit's generation is the breaker's, as text (unless written with leading zeros).
        if string.byte(pgs) == 48 and pgs ~= '0' then pgs = string.format('%d', gen) end
        return 'OK\nclosed\n' .. effect .. '\n' .. pgs
      end
    end
  end

  local S = load(keys, args, now)
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

  if S.mode ~= 'auto' then expire_mode(S) end
  local runs = S.mode == 'auto' or S.mode == 'metrics_only'
  if runs and S.state == 'half_open' then sweep_trials(S) end

  local effect
  local trial = false
  if pg == S.gen and S.state == 'half_open' then
    trial = redis.call('ZREM', keys[3], member) == 1
  end

  if pg ~= S.gen then
    local removed = redis.call('ZREM', keys[2], member)
    if removed > 0 then S.on, S.hot = S.on - removed, true end
    effect = 'stale'
  elseif trial then
    policy(S)
    if outcome == 'IGNORE' then
      effect = 'ignored'
    elseif outcome == 'FAILURE' then
      effect = 'counted'
      open_breaker(S, 'trial_failed', 'permit=' .. token)
    elseif S.slow_call_ms > 0 and ms >= S.slow_call_ms then
      effect = 'counted'
      open_breaker(S, 'trial_slow', 'permit=' .. token .. ' latency_ms=' .. ms .. ' slow_call_ms=' .. S.slow_call_ms)
    else
      effect = 'counted'
      S.oks, S.changed = S.oks + 1, true
      policy(S, true)
      if S.oks >= S.success_threshold then
        close_breaker(S, 'trials_succeeded', 'successes=' .. S.oks)
      end
    end
  else
    local outstanding = redis.call('ZREM', keys[2], member) == 1
    if outstanding then
      S.on, S.hot = S.on - 1, true
      policy(S)
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
      if count_outcomes(S, 1, outcome == 'FAILURE' and 1 or 0, slow) then
        effect = 'counted'
      else
        effect = 'not_counted'
      end
    end
  end

  return finish(S, { 'OK', S.state, effect, S.gen })
end

--[[ breakerd_v2_fold: outcomes a breakerd process gathered under its own permits, folded in at
once, and applied once however often the same fold arrives.
KEYS[1..5], ARGV[1..5]: see the top.
  KEYS[6] folds: zset of fold ids applied lately, score = applied at (ms) * 4 + effect code
          (0 counted, 1 stale, 2 not_counted); ids older than FOLD_MEMORY_MS (120 s) are pruned, and
          the key expires that long after the last fold that carried an id
  ARGV[6] the generation the outcomes were gathered under
  ARGV[7] calls, ARGV[8] failures, ARGV[9] slow calls (failures and slow calls are among the calls;
          IGNORE outcomes are not calls)
  ARGV[10] fold id: an opaque text of up to 64 bytes, the same for every attempt to send one
          fold; '' for no deduplication. A fold whose id was applied in the last 120 s applies
          nothing and answers with the effect the first one had, marked as a duplicate.
If the breaker is closed, its mode runs the state machine (auto or metrics_only) and the generation
is the current one, the outcomes go into the current bucket as that many reports would, with one
trip check after them (count_outcomes); otherwise they count nothing. With no calls it only reads
(and its id is not remembered).
Returns the fields OK, state, effect, gen, retry_after_ms, mode, slow_call_ms, permit_ttl_ms,
          duplicate, event... (one per line)
  effect: counted | stale (another generation) | not_counted (not closed, a forced mode, or Redis's
  clock stepped back past the window)
  retry_after_ms: what a denied acquire would say now (0 when an acquire would be permitted under auto)
  mode: the operator's mode; slow_call_ms, permit_ttl_ms: the breaker's policy, for the caller's
  own permits; duplicate: 1 when this fold id was applied already (nothing was applied now), else 0
Errors: 'BAD_COUNTS ...' unless 0 <= failures, slow <= calls; 'BAD_FOLD_ID ...' for an id longer
than 64 bytes. ]]
local function fold(keys, args)
  local fg, fc, ff, fw = tonumber(args[6]), tonumber(args[7]), tonumber(args[8]), tonumber(args[9])
  if not (fg and fc and ff and fw) or fg < 0 or fc < 0 or ff < 0 or fw < 0 or ff > fc or fw > fc
    or fg % 1 ~= 0 or fc % 1 ~= 0 or ff % 1 ~= 0 or fw % 1 ~= 0 then
    return redis.error_reply('BAD_COUNTS ' .. tostring(args[6]) .. ' ' .. tostring(args[7]) .. ' '
      .. tostring(args[8]) .. ' ' .. tostring(args[9]))
  end
  local id = args[10] or ''
  if #id > 64 then return redis.error_reply('BAD_FOLD_ID longer than 64 bytes') end
  if id ~= '' and not keys[6] then return redis.error_reply('BAD_FOLD_ID needs the folds key as KEYS[6]') end

  local S = load(keys, args)
  local now = S.now
  policy(S)

  -- A fold id seen within FOLD_MEMORY_MS: apply nothing, answer with the first one's effect.
  local remembered
  if id ~= '' and fc > 0 then
    local since = (now - FOLD_MEMORY_MS) * 4
    local score = redis.call('ZSCORE', keys[6], id)
    if score and score + 0 >= since then remembered = EFFECT[(score + 0) % 4] end
  end

  if S.mode ~= 'auto' then expire_mode(S) end
  local runs = S.mode == 'auto' or S.mode == 'metrics_only'
  if runs and S.state == 'half_open' then sweep_trials(S) end

  local effect
  if remembered then
    effect = remembered
  elseif fg ~= S.gen then
    effect = 'stale'
  elseif S.state ~= 'closed' or not runs then
    effect = 'not_counted'
  elseif fc == 0 or count_outcomes(S, fc, ff, fw) then
    effect = 'counted'
  else
    effect = 'not_counted'
  end

  if id ~= '' and fc > 0 and not remembered then
    local fmt = string.format
    redis.call('ZREMRANGEBYSCORE', keys[6], '-inf', '(' .. fmt('%d', (now - FOLD_MEMORY_MS) * 4))
    redis.call('ZADD', keys[6], fmt('%d', now * 4 + EFFECT_CODE[effect]), id)
    redis.call('PEXPIRE', keys[6], fmt('%d', FOLD_MEMORY_MS))
  end

  local retry = 0
  if S.mode == 'forced_open' or S.state == 'open' then
    retry = retry_after(S)
  elseif S.state == 'half_open' then
    policy(S, true)
    if redis.call('ZCARD', keys[3]) >= S.half_open_permits then retry = retry_after(S) end
  end

  return finish(S, { 'OK', S.state, effect, S.gen, retry, S.mode, S.slow_call_ms, S.permit_ttl_ms,
    remembered and 1 or 0 })
end

--[[ breakerd_v2_state: what a breaker looks like now, without changing it (flag no-writes, so
FCALL_RO may run it).
KEYS[1..5], ARGV[1..5]: see the top. No arguments of its own. Writes nothing: a pending move (open
time up, a lapsed trial lease, an expired mode) shows in the figures and happens at the next
acquire or report.
Returns field names and their values, alternately (one per line):
  exists, state, mode, gen, calls, failures, slow, failure_rate, slow_rate, trials, permits,
  retry_after_ms, opens, open_until, mode_by, mode_why, mode_at, mode_until ]]
local function rate(n, d)
  if d == 0 then return '0' end
  return string.format('%.4g', n / d)
end

local function state(keys, args)
  local S = load(keys, args)
  local now = S.now
  policy(S, true)
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
    local c, f, w = fallen_buckets(S)
    calls, fails, slows = calls - c, fails - f, slows - w
  end
  if S.state ~= 'closed' then calls, fails, slows = 0, 0, 0 end

  local trials = 0
  if S.state == 'half_open' then
    trials = redis.call('ZCOUNT', keys[3], '(' .. string.format('%d', now - S.permit_ttl_ms), '+inf')
  end

  local retry = 0
  if S.mode == 'forced_open' or S.state ~= 'closed' then
    if S.state == 'half_open' and trials < S.half_open_permits then retry = 0 else retry = retry_after(S) end
  end

  return table.concat({
    'exists', tostring(exists), 'state', S.state, 'mode', S.mode, 'gen', tostring(S.gen),
    'calls', tostring(calls), 'failures', tostring(fails), 'slow', tostring(slows),
    'failure_rate', rate(fails, calls), 'slow_rate', rate(slows, calls),
    'trials', tostring(trials), 'permits', tostring(S.half_open_permits),
    'retry_after_ms', tostring(retry), 'opens', tostring(S.opens), 'open_until', tostring(S.open_until),
    'mode_by', S.mode_by or '', 'mode_why', S.mode_why or '', 'mode_at', tostring(S.mode_at or 0),
    'mode_until', tostring(S.mode_until or 0),
  }, '\n')
end

--[[ breakerd_v2_control: an operator's action on one breaker, recorded in its history with who
and why.
KEYS[1..5], ARGV[1..5]: see the top.
  ARGV[6] action: force | reset | config
  ARGV[7] actor: who asked (free text without spaces, e.g. admin@127.0.0.1:50312/ops-console)
  ARGV[8] why: the operator's reason, or ''
  force:  ARGV[9] mode (auto | forced_open | forced_closed | metrics_only), ARGV[10] ttl ms (0: none)
  reset:  nothing more. Back to closed and auto, with an empty window and no backoff.
  config: ARGV[9..] key, value pairs of policy overrides ('' removes an override); the store has
          validated them.
Returns the fields OK, state, mode, gen, event... (one per line)
Errors: 'BAD_ACTION ...'. ]]
local function control(keys, args)
  local action, actor, why = args[6], args[7], args[8]
  if action ~= 'force' and action ~= 'reset' and action ~= 'config' then
    return redis.error_reply('BAD_ACTION ' .. tostring(action))
  end
  local S = load(keys, args)
  local now = S.now
  local who = ' by=' .. actor
  if why ~= '' then who = who .. ' why=' .. why end

  expire_mode(S)

  if action == 'force' then
    local new_mode, ttl = args[9], tonumber(args[10])
    if new_mode == 'auto' then
      if S.mode ~= 'auto' then leave_mode(S, 'mode_auto', who) end
    else
      local untl = 0
      if ttl > 0 then untl = now + ttl end
      redis.call('HSET', keys[5], 'mode', new_mode, 'mode_by', actor, 'mode_why', why, 'mode_at', now, 'mode_until', untl)
      local was = S.mode
      S.mode, S.mode_by, S.mode_why, S.mode_at, S.mode_until = new_mode, actor, why, now, untl
      local figures = 'mode=' .. was .. '->' .. new_mode .. ' ttl_ms=' .. ttl .. who
      if new_mode == 'forced_open' and S.state ~= 'open' then
        policy(S, true)
        S.open_until = now + (ttl > 0 and ttl or S.open_ms)
        clear_window(S)
        redis.call('DEL', keys[3])
        transition(S, 'open', 'forced_open', figures)
      elseif new_mode == 'forced_closed' and S.state ~= 'closed' then
        close_breaker(S, 'forced_closed', figures)
      else
        note(S, new_mode, figures)
      end
    end
    settings_changed(S)
  elseif action == 'reset' then
    clear_mode(S)
    close_breaker(S, 'reset', string.sub(who, 2))
  else
    local set, del, shown = {}, {}, {}
    for i = 9, #args, 2 do
      local k, v = args[i], args[i + 1]
      if v == '' then del[#del + 1] = k else set[#set + 1] = k; set[#set + 1] = v end
      shown[#shown + 1] = k .. '=' .. (v == '' and 'default' or v)
    end
    if #set > 0 then redis.call('HSET', keys[5], unpack(set)) end
    if #del > 0 then redis.call('HDEL', keys[5], unpack(del)) end
    settings_changed(S)
    note(S, 'config', 'set=' .. table.concat(shown, ',') .. who)
  end

  return finish(S, { 'OK', S.state, S.mode, S.gen })
end

redis.register_function('breakerd_v2_acquire', acquire)
redis.register_function('breakerd_v2_report', report)
redis.register_function('breakerd_v2_fold', fold)
redis.register_function{ function_name = 'breakerd_v2_state', callback = state, flags = { 'no-writes' } }
redis.register_function('breakerd_v2_control', control)
